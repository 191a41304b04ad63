-- Runs once, when the postgres container initialises an empty data volume (docker-compose.yml mounts this folder).
-- Apicurio keeps its schemas in a database of its own, apart from the application's tables and Debezium's publication.
CREATE DATABASE registry;
