/** Selects the in-process broker, following RabbitMQ 3.10, for the `contract:memory:3.10` jest project. */
process.env['POSTAGE_CONTRACT_BROKER'] = 'memory';
process.env['POSTAGE_CONTRACT_VERSION'] = '3.10';
