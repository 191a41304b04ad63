/**
 * An order's state rebuilt from its events alone (event sourcing): a pure left fold, so the state
 * at any instant is the fold of the events that had occurred by then.
 */

export interface StoredEvent {
  seq: number;
  eventId: string;
  eventType: string;
  eventVersion: number;
  orderId: string;
  occurredAt: Date;
  payload: Record<string, unknown>;
}

export interface OrderState {
  orderId: string;
  /** NONE before order.placed; then the order's own lifecycle. */
  status: 'NONE' | 'PLACED' | 'CONFIRMED' | 'FAILED';
  customerId: string | null;
  currency: string | null;
  totalMinor: number | null;
  items: { sku: string; quantity: number; unitPriceMinor: number }[];
  stock: 'NONE' | 'RESERVED' | 'RELEASED';
  payment: 'NONE' | 'CAPTURED' | 'REFUNDED';
  /** Captured minus refunded, in minor units. */
  paidMinor: number;
  cancelRequested: boolean;
  failure: { type: string; reason: string } | null;
  notificationsSent: string[];
  /** Events folded so far, and the time of the last one. */
  eventCount: number;
  asOf: string | null;
}

export function emptyOrderState(orderId: string): OrderState {
  return {
    orderId,
    status: 'NONE',
    customerId: null,
    currency: null,
    totalMinor: null,
    items: [],
    stock: 'NONE',
    payment: 'NONE',
    paidMinor: 0,
    cancelRequested: false,
    failure: null,
    notificationsSent: [],
    eventCount: 0,
    asOf: null,
  };
}

const num = (v: unknown) => (typeof v === 'number' ? v : 0);
const str = (v: unknown) => (typeof v === 'string' ? v : '');

/** Applies one event. Unknown event types count but change nothing (forward compatible). */
export function applyEvent(s: OrderState, e: StoredEvent): OrderState {
  const p = e.payload;
  const next: OrderState = { ...s, eventCount: s.eventCount + 1, asOf: e.occurredAt.toISOString() };
  switch (e.eventType) {
    case 'order.placed':
      return {
        ...next,
        status: 'PLACED',
        customerId: str(p.userId),
        currency: str(p.currency),
        totalMinor: num(p.totalMinor),
        items: (p.items as OrderState['items'] | undefined) ?? [],
      };
    case 'order.cancelled':
      return { ...next, cancelRequested: true };
    case 'order.confirmed':
      return { ...next, status: 'CONFIRMED' };
    case 'order.failed':
      return { ...next, status: 'FAILED', failure: { type: str(p.failureType), reason: str(p.reason) } };
    case 'inventory.stock-reserved':
      return { ...next, stock: 'RESERVED' };
    case 'inventory.stock-released':
      return { ...next, stock: 'RELEASED' };
    case 'payments.payment-captured':
      return { ...next, payment: 'CAPTURED', paidMinor: s.paidMinor + num(p.amountMinor) };
    case 'payments.payment-refunded':
      return { ...next, payment: 'REFUNDED', paidMinor: s.paidMinor - num(p.amountMinor) };
    case 'notifications.notification-sent':
      return { ...next, notificationsSent: [...s.notificationsSent, str(p.kind)] };
    default:
      return next;
  }
}

/** The state after every event that occurred at or before `at` (all events when omitted). */
export function rebuildOrderState(orderId: string, events: readonly StoredEvent[], at?: Date): OrderState {
  return events
    .filter((e) => !at || e.occurredAt.getTime() <= at.getTime())
    .reduce(applyEvent, emptyOrderState(orderId));
}
