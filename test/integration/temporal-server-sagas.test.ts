import { orderWorkflowId } from '../../src/shared/saga-contract';
import { DECLINED_CARD_TOKEN } from '../../src/simulated-external/card-gateway';
import { PrivateTemporalServer } from '../../src/stack/private-temporal-server';
import { db } from '../support/ingress-harness';
import { newOrder } from '../support/saga-harness';
import { startSystem } from '../support/system';

// First run on a fresh machine builds the server (minutes); afterwards it starts in seconds.
jest.setTimeout(900_000);

const WORKER_ROLES = ['saga', 'orders', 'inventory', 'payments', 'notifications'] as const;

afterAll(async () => {
  await db.end();
});

describe('the full Temporal server on PostgreSQL (PrivateTemporalServer)', () => {
  it('runs real sagas: one CONFIRMED, one declined card FAILED with its stock released, then stops and drops its databases', async () => {
    const lines: string[] = [];
    const server = await PrivateTemporalServer.create({ progress: (l) => lines.push(l) });
    try {
      await server.start();
      expect(lines.at(-1)).toMatch(/^ready/);
      const system = await startSystem(WORKER_ROLES, { env: { TEMPORAL_ADDRESS: server.address } });
      try {
        // The client of the system talks to the private server, not the stack's.
        const info = await system.client.connection.workflowService.getSystemInfo({});
        expect(info.serverVersion).toBe('1.32.2');
        const sku = await system.stockedSku(10);
        const ok = newOrder(sku, 2);
        const declined = newOrder(sku, 3, DECLINED_CARD_TOKEN);
        const [okResult, declinedResult] = await Promise.all([
          (await system.start(ok)).result(),
          (await system.start(declined)).result(),
        ]);
        expect(okResult).toMatchObject({ orderId: ok.orderId, outcome: 'CONFIRMED' });
        expect(declinedResult).toMatchObject({ orderId: declined.orderId, outcome: 'FAILED' });
        expect(declinedResult.status.compensationsRun).toContain('releaseStock');
        // Only the confirmed order's units stay reserved: the declined one's were given back.
        const stock = await db.query<{ available: number }>('SELECT available FROM inventory.stock WHERE sku = $1', [
          sku,
        ]);
        expect(stock.rows[0]?.available).toBe(8);
        // Visibility on PostgreSQL answers the saga's search attributes.
        const closed = await system.client.workflow.count(
          `OrderState = "FAILED" AND CustomerId = "${declined.customerId}"`,
        );
        expect(closed.count).toBe(1);
        expect((await system.client.workflow.getHandle(orderWorkflowId(ok.orderId)).describe()).status.name).toBe(
          'COMPLETED',
        );
      } finally {
        await system.stop();
      }
    } finally {
      await server.stop();
    }
    const left = await db.query('SELECT datname FROM pg_database WHERE datname = ANY($1)', [
      [server.databases.main, server.databases.visibility],
    ]);
    expect(left.rows).toEqual([]);
  });
});
