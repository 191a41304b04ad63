import type { Admin } from 'kafkajs';

import { createTopicsAndWait } from '../../src/kafka/create-topics';

type Meta = Awaited<ReturnType<Admin['fetchTopicMetadata']>>;

/** A fake admin whose metadata answers are scripted: an error to throw, or the topics to return. */
function fakeAdmin(answers: (Meta | { type: string; message: string })[]) {
  const calls: string[] = [];
  const admin = {
    createTopics: ({ topics }: { topics: { topic: string }[] }) => {
      calls.push(`create ${topics.map((t) => t.topic).join(',')}`);
      return Promise.resolve(true);
    },
    fetchTopicMetadata: () => {
      calls.push('metadata');
      const next = answers.shift();
      if (!next) return Promise.reject(new Error('no more scripted answers'));
      if ('type' in next) return Promise.reject(Object.assign(new Error(next.message), { type: next.type }));
      return Promise.resolve(next);
    },
  };
  return { admin, calls };
}

const withLeader = (leader: number): Meta => ({
  topics: [
    {
      name: 't',
      partitions: [{ partitionId: 0, leader, replicas: [1], isr: [1], offlineReplicas: [], partitionErrorCode: 0 }],
    },
  ],
});

describe('createTopicsAndWait', () => {
  it('waits out a broker that does not know the new topic yet, then a partition without a leader', async () => {
    const { admin, calls } = fakeAdmin([
      { type: 'UNKNOWN_TOPIC_OR_PARTITION', message: 'This server does not host this topic-partition' },
      withLeader(-1),
      withLeader(1),
    ]);
    await expect(createTopicsAndWait(admin, [{ topic: 't', numPartitions: 1 }])).resolves.toBe(true);
    expect(calls).toEqual(['create t', 'metadata', 'metadata', 'metadata']);
  });

  it('passes any other error on at once', async () => {
    const { admin } = fakeAdmin([{ type: 'TOPIC_AUTHORIZATION_FAILED', message: 'Not authorized to access topics' }]);
    await expect(createTopicsAndWait(admin, [{ topic: 't', numPartitions: 1 }])).rejects.toThrow(
      'Not authorized to access topics',
    );
  });

  it('gives up after its wait, naming the topic and why', async () => {
    const { admin } = fakeAdmin(Array.from({ length: 50 }, () => withLeader(-1)));
    await expect(createTopicsAndWait(admin, [{ topic: 't', numPartitions: 1 }], 300)).rejects.toThrow(
      /^topics t not ready 300 ms after creation \(no leader yet for t\)$/,
    );
  });
});
