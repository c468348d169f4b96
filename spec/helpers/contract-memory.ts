/** Selects the in-process broker for the `contract:memory` jest project. */
process.env['POSTAGE_CONTRACT_BROKER'] = 'memory';
