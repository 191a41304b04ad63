/**
 * Optional secure listeners for the stack's servers, the shape a user's own infrastructure has:
 * TLS on PostgreSQL, SASL_SSL (SCRAM-SHA-512 over TLS) on Kafka and for Kafka Connect's clients.
 * The default local stack runs without them; tests pass them to prove the app works against them.
 * Temporal's dev server and Apicurio have no TLS/basic auth of their own: a proxy in front adds it.
 */

/** A Kafka SASL/SCRAM user. */
export interface ScramUser {
  name: string;
  password: string;
}

export interface SecureListeners {
  /**
   * PEM files: the CA that signed the server certificate, the server certificate (its SANs must name
   * the stack's host) and its unencrypted PKCS#8 private key.
   */
  tls: { caFile: string; certFile: string; keyFile: string };
  kafka: {
    /** The broker's own identity on its SASL_SSL listener (inter-broker traffic of the single node). */
    broker: ScramUser;
    /** Kafka Connect's identity for its worker, producers, consumers and admin client. */
    connect: ScramUser;
    /** Further users created when the storage is formatted (the app's, a test's). */
    users: ScramUser[];
  };
}

export const KAFKA_SCRAM_MECHANISM = 'SCRAM-SHA-512';

/** A value inside a JAAS option string: double quotes and backslashes escaped. */
function jaasQuote(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** The JAAS line a Kafka client (or the broker itself) logs in with over SCRAM. */
export function scramJaasConfig(user: ScramUser): string {
  return `org.apache.kafka.common.security.scram.ScramLoginModule required username=${jaasQuote(user.name)} password=${jaasQuote(user.password)};`;
}

/**
 * The `--add-scram` arguments of `kafka-storage format`: the credentials are written into the
 * cluster's bootstrap metadata, so they exist before the broker first accepts a SASL connection
 * (the broker needs its own to talk to itself).
 */
export function scramFormatArgs(secure: SecureListeners): string[] {
  const users = [secure.kafka.broker, secure.kafka.connect, ...secure.kafka.users];
  for (const u of users) {
    // The format tool's [name=…,password=…] syntax has no escaping: refuse what it would misread.
    if (/[,=[\]\s]/.test(u.name) || /[,[\]\s]/.test(u.password)) {
      throw new Error(`SCRAM user '${u.name}': names and passwords may not contain spaces, commas or brackets`);
    }
  }
  return users.flatMap((u) => ['--add-scram', `${KAFKA_SCRAM_MECHANISM}=[name=${u.name},password=${u.password}]`]);
}

/**
 * Java Kafka client properties for SASL_SSL with SCRAM, trusting only the given CA and checking the
 * broker's host name against its certificate. `prefix` scopes them (Connect's `producer.`, say).
 */
export function kafkaClientSecurityProperties(secure: SecureListeners, user: ScramUser, prefix = ''): string[] {
  return [
    `${prefix}security.protocol=SASL_SSL`,
    `${prefix}sasl.mechanism=${KAFKA_SCRAM_MECHANISM}`,
    `${prefix}sasl.jaas.config=${scramJaasConfig(user)}`,
    `${prefix}ssl.truststore.type=PEM`,
    `${prefix}ssl.truststore.location=${secure.tls.caFile}`,
    `${prefix}ssl.endpoint.identification.algorithm=https`,
  ];
}
