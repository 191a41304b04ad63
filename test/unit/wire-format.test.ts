import { decodeFrame, encodeFrame, frameSchemaId, WireFormatError } from '../../src/kafka/wire-format';

function failureType(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof WireFormatError ? err.type : `unexpected: ${String(err)}`;
  }
  return undefined;
}

describe('Confluent wire format', () => {
  it('round-trips schema id and body', () => {
    const body = Buffer.from([1, 2, 3]);
    const framed = encodeFrame(0x01020304, body);
    expect([...framed.subarray(0, 5)]).toEqual([0, 1, 2, 3, 4]);
    expect(decodeFrame(framed)).toEqual({ schemaId: 0x01020304, body });
  });

  it('names what is wrong with a payload that is not a frame', () => {
    expect(failureType(() => decodeFrame(null))).toBe('EmptyPayload');
    expect(failureType(() => decodeFrame(Buffer.alloc(0)))).toBe('EmptyPayload');
    expect(failureType(() => decodeFrame(Buffer.from([0, 0, 1])))).toBe('TruncatedPayload');
    expect(failureType(() => decodeFrame(Buffer.from('{"json":true}')))).toBe('WrongMagicByte');
  });

  it('reads the schema id from the header alone, with the same refusals as decodeFrame', () => {
    expect(frameSchemaId(encodeFrame(0x01020304, Buffer.from([9])))).toBe(0x01020304);
    expect(frameSchemaId(encodeFrame(7, Buffer.alloc(0)))).toBe(7);
    expect(failureType(() => frameSchemaId(null))).toBe('EmptyPayload');
    expect(failureType(() => frameSchemaId(Buffer.from([0, 0, 1])))).toBe('TruncatedPayload');
    expect(failureType(() => frameSchemaId(Buffer.from('{"json":true}')))).toBe('WrongMagicByte');
  });

  it('rejects schema ids that do not fit in four bytes', () => {
    expect(() => encodeFrame(-1, Buffer.alloc(0))).toThrow(RangeError);
    expect(() => encodeFrame(2 ** 32, Buffer.alloc(0))).toThrow(RangeError);
  });
});
