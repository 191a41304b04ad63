/**
 * The ingress's settings are the shared sections plus its own role section of the one settings
 * model (src/config/settings.ts); its topics, group and task queues come from the scope's names.
 */
import type { Settings } from '../config/settings';

export type IngressConfig = Settings<'ingress'>;
