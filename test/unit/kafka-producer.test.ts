import type { Message, PartitionMetadata, ProducerRecord, RecordMetadata } from 'kafkajs';
import { Partitioners } from 'kafkajs';

import { partitionSafeSend } from '../../src/config/clients';

const meta: PartitionMetadata[] = Array.from({ length: 6 }, (_, i) => ({
  partitionId: i,
  leader: (i % 3) + 1,
  replicas: [1, 2, 3],
  isr: [1, 2, 3],
  offlineReplicas: [],
  partitionErrorCode: 0,
}));

/** A fake producer's send that records each request it gets. */
function recorder() {
  const requests: ProducerRecord[] = [];
  const send = (r: ProducerRecord): Promise<RecordMetadata[]> => {
    requests.push(r);
    return Promise.resolve(r.messages.map((m) => ({ topicName: r.topic, partition: m.partition ?? -1, errorCode: 0 })));
  };
  return { requests, send };
}

describe('partitionSafeSend (kafkajs loses records of a multi-broker send when a leader dies)', () => {
  const messages: Message[] = Array.from({ length: 50 }, (_, i) => ({ key: `ord-${i}`, value: `v${i}` }));

  it('sends one request per partition, each record once, on the partition kafkajs itself would pick', async () => {
    const r = recorder();
    const send = partitionSafeSend(r.send, () => Promise.resolve(meta));
    const out = await send({ topic: 't', acks: -1, messages });
    const reference = Partitioners.DefaultPartitioner();
    for (const req of r.requests) {
      expect(new Set(req.messages.map((m) => m.partition)).size).toBe(1);
      expect(req.acks).toBe(-1);
    }
    expect(new Set(r.requests.map((req) => req.messages[0]!.partition)).size).toBe(r.requests.length);
    const sent = r.requests.flatMap((req) => req.messages);
    expect(sent.map((m) => m.key).sort()).toEqual(messages.map((m) => m.key).sort());
    for (const m of sent) {
      expect(m.partition).toBe(
        reference({ topic: 't', partitionMetadata: meta, message: { ...m, partition: undefined } }),
      );
    }
    // What every request answered, together.
    expect(out).toHaveLength(messages.length);
  });

  it("keeps the order of a partition's records and an explicit partition", async () => {
    const r = recorder();
    const send = partitionSafeSend(r.send, () => Promise.resolve(meta));
    const same = Array.from({ length: 5 }, (_, i) => ({ key: 'ord-same', value: `step-${i}` }));
    await send({ topic: 't', messages: [...same, { key: 'x', value: 'pinned', partition: 5 }] });
    const ofSame = r.requests.find((req) => req.messages.some((m) => m.key === 'ord-same'))!;
    expect(ofSame.messages.filter((m) => m.key === 'ord-same').map((m) => m.value)).toEqual(same.map((m) => m.value));
    expect(r.requests.flatMap((req) => req.messages).find((m) => m.value === 'pinned')?.partition).toBe(5);
  });
});
