import type { SecureListeners } from '../../src/stack/secure';
import { kafkaClientSecurityProperties, scramFormatArgs, scramJaasConfig } from '../../src/stack/secure';

const secure: SecureListeners = {
  tls: { caFile: '/pki/ca.pem', certFile: '/pki/server.pem', keyFile: '/pki/server.key' },
  kafka: {
    broker: { name: 'broker', password: 'b-secret' },
    connect: { name: 'connect', password: 'c-secret' },
    users: [{ name: 'app', password: 'a-secret' }],
  },
};

describe('secure listener settings of the stack', () => {
  it('creates every SCRAM user when the storage is formatted, the broker first', () => {
    expect(scramFormatArgs(secure)).toEqual([
      '--add-scram',
      'SCRAM-SHA-512=[name=broker,password=b-secret]',
      '--add-scram',
      'SCRAM-SHA-512=[name=connect,password=c-secret]',
      '--add-scram',
      'SCRAM-SHA-512=[name=app,password=a-secret]',
    ]);
  });

  it('refuses credentials the format tool would misread instead of creating a different user', () => {
    const bad = { ...secure, kafka: { ...secure.kafka, users: [{ name: 'app', password: 'a,password=x' }] } };
    expect(() => scramFormatArgs(bad)).toThrow("SCRAM user 'app': names and passwords may not contain");
  });

  it('quotes JAAS option values so a quote in a password cannot end the string', () => {
    expect(scramJaasConfig({ name: 'u', password: 'p"w\\x' })).toBe(
      'org.apache.kafka.common.security.scram.ScramLoginModule required username="u" password="p\\"w\\\\x";',
    );
  });

  it("gives Java clients SASL_SSL with the stack's CA and host name checking, under a prefix", () => {
    expect(kafkaClientSecurityProperties(secure, secure.kafka.connect, 'producer.')).toEqual([
      'producer.security.protocol=SASL_SSL',
      'producer.sasl.mechanism=SCRAM-SHA-512',
      'producer.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="connect" password="c-secret";',
      'producer.ssl.truststore.type=PEM',
      'producer.ssl.truststore.location=/pki/ca.pem',
      'producer.ssl.endpoint.identification.algorithm=https',
    ]);
  });
});
