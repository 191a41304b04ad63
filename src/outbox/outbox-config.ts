/**
 * The outbox writer of a process, from its settings: the registry to encode with, and the scope,
 * whose name prefixes the destination topics.
 */
import { createRegistryClient } from '../config/clients';
import type { Settings } from '../config/settings';
import { EventCodec } from '../events/codec';
import { OutboxWriter } from './outbox-writer';

/** The writer every service of the process appends its domain events with. */
export function outboxWriterFor(settings: Pick<Settings, 'registry' | 'common'>): OutboxWriter {
  return new OutboxWriter({
    codec: new EventCodec(createRegistryClient(settings.registry)),
    topicPrefix: settings.common.names.topicPrefix,
  });
}
