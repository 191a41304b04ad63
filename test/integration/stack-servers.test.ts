import path from 'node:path';

import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import avro from 'avsc';
import pg from 'pg';

import { RegistryClient } from '../../src/kafka/registry-client';
import { decodeFrame, encodeFrame } from '../../src/kafka/wire-format';
import { DEBEZIUM_POSTGRES_CLASS } from '../../src/stack/components/connect';
import { consumeUntil, endpoints, kafkaClient, stackConfig, uniqueName } from '../support/stack';
import { waitUntil } from '../support/wait-until';
import { finishSignal, pingWorkflow } from '../support/workflows/ping';

jest.setTimeout(180_000);

describe('the local stack runs real servers', () => {
  it('registers an Avro schema and carries a Confluent-framed record through Kafka', async () => {
    const registry = new RegistryClient(endpoints.registryUrl);
    const topic = uniqueName('it_avro');
    const schema: avro.Schema = {
      type: 'record',
      name: 'Probe',
      namespace: 'kts.test',
      fields: [
        { name: 'id', type: 'string' },
        { name: 'amountMinor', type: 'long' },
      ],
    };
    const schemaId = await registry.register(`${topic}-value`, schema);
    expect(await registry.subjects()).toContain(`${topic}-value`);

    const producer = kafkaClient().producer();
    await producer.connect();
    const value = encodeFrame(schemaId, avro.Type.forSchema(schema).toBuffer({ id: 'o-1', amountMinor: 12_345 }));
    await producer.send({ topic, messages: [{ key: 'o-1', value }] });
    await producer.disconnect();

    const [message] = await consumeUntil(topic, (m) => m.length >= 1);
    const frame = decodeFrame(message?.value);
    expect(frame.schemaId).toBe(schemaId);
    // Decode with the schema fetched by id from the registry, as a real consumer would.
    const writer = avro.Type.forSchema(
      JSON.parse(await new RegistryClient(endpoints.registryUrl).schemaById(schemaId)) as avro.Schema,
    );
    expect(writer.fromBuffer(frame.body)).toEqual({ id: 'o-1', amountMinor: 12_345 });
    expect(message?.key?.toString()).toBe('o-1');
  });

  it('starts and completes a workflow on the Temporal server', async () => {
    const taskQueue = uniqueName('it_ping');
    const connection = await Connection.connect({ address: endpoints.temporalAddress });
    const workerConnection = await NativeConnection.connect({ address: endpoints.temporalAddress });
    const worker = await Worker.create({
      connection: workerConnection,
      taskQueue,
      workflowsPath: path.join(__dirname, '..', 'support', 'workflows', 'ping.ts'),
    });
    const client = new Client({ connection });
    try {
      const result = await worker.runUntil(async () => {
        const handle = await client.workflow.start(pingWorkflow, {
          taskQueue,
          workflowId: uniqueName('ping'),
          args: ['hello'],
        });
        await handle.signal(finishSignal, 'world');
        return handle.result();
      });
      expect(result).toBe('hello world');
    } finally {
      await connection.close();
      await workerConnection.close();
    }
  });

  it('captures a PostgreSQL insert with a Debezium connector registered over the Connect REST API', async () => {
    const name = uniqueName('it_cdc');
    const db = new pg.Client({ connectionString: endpoints.postgresUrl });
    await db.connect();
    await db.query(`create schema ${name}`);
    await db.query(`create table ${name}.probe (id text primary key, note text not null)`);

    const connectorConfig = {
      'connector.class': DEBEZIUM_POSTGRES_CLASS,
      'database.hostname': stackConfig.host,
      'database.port': String(stackConfig.ports.postgres),
      'database.user': stackConfig.postgres.user,
      'database.password': stackConfig.postgres.password,
      'database.dbname': stackConfig.postgres.database,
      'plugin.name': 'pgoutput',
      'topic.prefix': name,
      'table.include.list': `${name}.probe`,
      'publication.name': `${name}_pub`,
      'publication.autocreate.mode': 'filtered',
      'slot.name': name,
      'slot.drop.on.stop': 'true',
      'snapshot.mode': 'no_data',
    };
    const connectorUrl = `${endpoints.connectUrl}/connectors/${name}`;
    try {
      const put = await fetch(`${connectorUrl}/config`, {
        method: 'PUT',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(connectorConfig),
      });
      expect(put.status).toBe(201);
      await waitForConnectorRunning(connectorUrl);

      await db.query(`insert into ${name}.probe (id, note) values ('p-1', 'hello from the WAL')`);
      const topic = `${name}.${name}.probe`;
      const [change] = await consumeUntil(topic, (m) => m.length >= 1, 90_000);
      const event = JSON.parse(change?.value?.toString() ?? '{}') as {
        op?: string;
        after?: { id: string; note: string };
      };
      expect(event.op).toBe('c');
      expect(event.after).toEqual({ id: 'p-1', note: 'hello from the WAL' });
    } finally {
      await fetch(connectorUrl, { method: 'DELETE' });
      await db.query(`drop schema ${name} cascade`);
      await db.end();
    }
  });
});

/** Polls the connector status until its task runs; a FAILED task fails the test with its trace. */
async function waitForConnectorRunning(connectorUrl: string): Promise<void> {
  await waitUntil(
    'the connector task to run',
    async () => {
      const res = await fetch(`${connectorUrl}/status`);
      if (!res.ok) return undefined; // not created yet: keep waiting
      const status = (await res.json()) as { tasks: { state: string; trace?: string }[] };
      const failed = status.tasks.find((t) => t.state === 'FAILED');
      if (failed) throw new Error(`connector task failed: ${failed.trace?.split('\n')[0]}`);
      return status;
    },
    (status) => status !== undefined && status.tasks.length > 0 && status.tasks.every((t) => t.state === 'RUNNING'),
    { timeoutMs: 60_000, intervalMs: 500 },
  );
}
