import { prepared } from '../../src/db/prepared';

describe('prepared', () => {
  it('names a statement after its text: one text, one name; two texts, two names', () => {
    const text = 'SELECT status FROM orders.orders WHERE order_id = $1';
    const a = prepared(text, ['o-1']);
    const b = prepared(`SELECT status FROM orders.orders WHERE order_id = ${'$1'}`, ['o-2']);
    const other = prepared('SELECT customer_id FROM orders.orders WHERE order_id = $1', ['o-1']);
    expect(a.name).toMatch(/^kts_[0-9a-f]{20}$/);
    expect(a).toEqual({ name: a.name, text, values: ['o-1'] });
    expect(b.name).toBe(a.name);
    expect(b.values).toEqual(['o-2']);
    expect(other.name).not.toBe(a.name);
  });
});
