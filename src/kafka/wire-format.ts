/**
 * The Confluent wire format every Avro record on our topics uses:
 * byte 0 = magic 0, bytes 1-4 = schema id (big-endian), then the Avro binary body.
 */
export const MAGIC_BYTE = 0;
/** Magic byte + 4-byte schema id. */
export const HEADER_BYTES = 5;

export class WireFormatError extends Error {
  override name = 'WireFormatError';
  constructor(
    message: string,
    /** Failure type string, used as the dead-letter reason. */
    readonly type: 'EmptyPayload' | 'TruncatedPayload' | 'WrongMagicByte',
  ) {
    super(message);
  }
}

export function encodeFrame(schemaId: number, body: Buffer): Buffer {
  if (!Number.isInteger(schemaId) || schemaId < 0 || schemaId > 0xffffffff) {
    throw new RangeError(`schema id ${schemaId} does not fit in 4 bytes`);
  }
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt8(MAGIC_BYTE, 0);
  header.writeUInt32BE(schemaId, 1);
  return Buffer.concat([header, body]);
}

/**
 * The schema id of a framed payload, checking the header only; the Avro body starts at byte
 * {@link HEADER_BYTES}. Throws a typed WireFormatError for anything that is not a frame. Lets a
 * decoder read the body in place instead of slicing a new Buffer per record.
 */
export function frameSchemaId(payload: Buffer | null | undefined): number {
  if (!payload || payload.length === 0) throw new WireFormatError('record has no value', 'EmptyPayload');
  if (payload.length < HEADER_BYTES) {
    throw new WireFormatError(`record is ${payload.length} bytes, shorter than the 5-byte header`, 'TruncatedPayload');
  }
  const magic = payload.readUInt8(0);
  if (magic !== MAGIC_BYTE)
    throw new WireFormatError(`magic byte is ${magic}, expected ${MAGIC_BYTE}`, 'WrongMagicByte');
  return payload.readUInt32BE(1);
}

/** Splits a framed payload; throws a typed WireFormatError for anything that is not one. */
export function decodeFrame(payload: Buffer | null | undefined): { schemaId: number; body: Buffer } {
  const schemaId = frameSchemaId(payload);
  return { schemaId, body: (payload as Buffer).subarray(HEADER_BYTES) };
}
