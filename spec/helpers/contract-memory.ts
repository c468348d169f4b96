/** Selects the in-process broker, following RabbitMQ 4.0, for the `contract:memory` jest project. */
process.env['POSTAGE_CONTRACT_BROKER'] = 'memory';
process.env['POSTAGE_CONTRACT_VERSION'] = '4.0';
