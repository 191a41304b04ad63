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

/** An operator's decision on a parked saga, as its order.parked-decision event recorded it. */
export interface ParkedDecisionRecord {
  eventId: string;
  decision: 'RETRY' | 'RESOLVE_MANUALLY' | 'ABANDON';
  operator: string;
  reason: string | null;
  /** The parking round it ended: 1 the first time the saga parked, 2 after a retry parked it again, … */
  round: number;
  /** The compensations that had failed when the saga parked. */
  failedSteps: string[];
  decidedAt: string;
}

/**
 * Where a saga whose compensation exhausted its retries stands, as far as its events tell.
 * - PARKED: waiting for an operator. The saga writes no event when it parks, so the store infers the
 *   first parking from the facts: the order failed while a charge or a reservation was still in place
 *   (the saga undoes them before it fails the order, so one of them must have exhausted its retries).
 *   A compensation that fails elsewhere (failOrder, the failure notice) shows with the first decision.
 * - RETRYING: an operator asked for a retry; not every failed compensation has landed since.
 * - RETRIED: every compensation retried has landed: the saga ended FAILED, fully undone.
 * - RESOLVED_MANUALLY / ABANDONED: an operator ended the saga.
 * A retry that parks the saga again shows as RETRYING until the next decision (round + 1) arrives.
 */
export interface ParkedState {
  state: 'PARKED' | 'RETRYING' | 'RETRIED' | 'RESOLVED_MANUALLY' | 'ABANDONED';
  round: number;
  /** When the saga parked (inferred: when the order failed), or the first decision when nothing told earlier. */
  since: string;
  failedSteps: string[];
  /** Failed compensations whose effect (refund, release, failed order, failure notice) has not been seen yet. */
  openSteps: string[];
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
  /** Set once a compensation exhausted its retries (the saga parked); null for every other order. */
  parked: ParkedState | null;
  /** Every operator decision on the parked saga, oldest first: who, what, why. */
  decisions: ParkedDecisionRecord[];
  /** Loyalty points the order earned its customer, net of any taken back (the loyalty service's events). */
  loyaltyPoints: number;
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
    parked: null,
    decisions: [],
    loyaltyPoints: 0,
    eventCount: 0,
    asOf: null,
  };
}

const num = (v: unknown) => (typeof v === 'number' ? v : 0);
const str = (v: unknown) => (typeof v === 'string' ? v : '');
const strings = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

const DECISIONS: readonly ParkedDecisionRecord['decision'][] = ['RETRY', 'RESOLVE_MANUALLY', 'ABANDON'];

/** The compensation whose effect an event is; its arrival closes that step of a parked saga. */
function compensationDone(e: StoredEvent): string | null {
  switch (e.eventType) {
    case 'payments.payment-refunded':
      return 'refundPayment';
    case 'inventory.stock-released':
      return 'releaseStock';
    case 'order.failed':
      return 'failOrder';
    case 'notifications.notification-sent':
      return e.payload.kind === 'ORDER_FAILED' ? 'notifyCustomer' : null;
    default:
      return null;
  }
}

/** Closes the step `e` completes, if the saga is parked on it; a retry whose steps all landed is RETRIED. */
function closeStep(parked: ParkedState | null, e: StoredEvent): ParkedState | null {
  const done = compensationDone(e);
  if (!parked || !done || !parked.openSteps.includes(done)) return parked;
  const openSteps = parked.openSteps.filter((s) => s !== done);
  const state = parked.state === 'RETRYING' && openSteps.length === 0 ? 'RETRIED' : parked.state;
  return { ...parked, openSteps, state };
}

/**
 * order.failed: the saga undoes the charge and the reservation before it fails the order, so one
 * still in place when the order fails is a compensation that exhausted its retries: the saga parked.
 */
function parkedOnFailure(s: OrderState, e: StoredEvent): ParkedState | null {
  if (s.parked) return s.parked;
  const open = [
    ...(s.payment === 'CAPTURED' ? ['refundPayment'] : []),
    ...(s.stock === 'RESERVED' ? ['releaseStock'] : []),
  ];
  if (!open.length) return null;
  return { state: 'PARKED', round: 1, since: e.occurredAt.toISOString(), failedSteps: open, openSteps: open };
}

function decided(s: OrderState, e: StoredEvent): Pick<OrderState, 'parked' | 'decisions'> {
  const p = e.payload;
  const kind = DECISIONS.find((d) => d === p.decision);
  // A decision this build does not know (a newer schema's symbol) is kept out of the fold, not guessed at.
  if (!kind) return { parked: s.parked, decisions: s.decisions };
  const record: ParkedDecisionRecord = {
    eventId: e.eventId,
    decision: kind,
    operator: str(p.operator),
    reason: typeof p.reason === 'string' ? p.reason : null,
    round: num(p.round),
    failedSteps: strings(p.failedSteps),
    decidedAt: e.occurredAt.toISOString(),
  };
  const state = kind === 'RETRY' ? 'RETRYING' : kind === 'RESOLVE_MANUALLY' ? 'RESOLVED_MANUALLY' : 'ABANDONED';
  return {
    decisions: [...s.decisions, record],
    parked: {
      state,
      round: record.round,
      since: s.parked?.since ?? record.decidedAt,
      failedSteps: record.failedSteps,
      // The saga names what is still undone; a retry runs exactly these again.
      openSteps: record.failedSteps,
    },
  };
}

/** Applies one event. Unknown event types count but change nothing (forward compatible). */
export function applyEvent(s: OrderState, e: StoredEvent): OrderState {
  const p = e.payload;
  const next: OrderState = {
    ...s,
    eventCount: s.eventCount + 1,
    asOf: e.occurredAt.toISOString(),
    parked: closeStep(s.parked, e),
  };
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
      return {
        ...next,
        status: 'FAILED',
        failure: { type: str(p.failureType), reason: str(p.reason) },
        parked: parkedOnFailure(next, e),
      };
    case 'order.parked-decision':
      return { ...next, ...decided(next, e) };
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
    case 'loyalty.points-awarded':
      return { ...next, loyaltyPoints: s.loyaltyPoints + num(p.points) };
    case 'loyalty.points-revoked':
      return { ...next, loyaltyPoints: s.loyaltyPoints - num(p.points) };
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
