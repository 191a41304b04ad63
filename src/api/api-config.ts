/**
 * The API's settings are the shared sections plus its own role section of the one settings model
 * (src/config/settings.ts): listen address, body limit and its PostgreSQL URL.
 */
import type { Settings } from '../config/settings';

export type ApiConfig = Settings<'api'>;
