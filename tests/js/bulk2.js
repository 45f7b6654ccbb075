// jsforce 3.x driving the Salesforce emulator's Bulk API 2.0, as a second, independent client.
//
// Reads one JSON object on stdin:
//   {instanceUrl, accessToken, version, insertCsv, updateRecords, query}
// and prints one JSON object on stdout with what jsforce parsed:
//   {insert: {successfulResults, failedResults, unprocessedRecords},
//    update: {...}, query: [records], unknownObject: {name, errorCode, message}}
// On an unexpected failure it prints {error: {...}} and exits 1.
//
// Only connection settings point jsforce at the emulator; the CA is trusted through
// NODE_EXTRA_CA_CERTS (set by the test), never by turning TLS checks off.
'use strict';

const fs = require('fs');
const jsforce = require('jsforce');

function errorInfo(err) {
  return { name: err.name, errorCode: err.errorCode, message: err.message };
}

async function collect(recordStream) {
  const records = [];
  await new Promise((resolve, reject) => {
    recordStream.on('record', (record) => records.push(record));
    recordStream.on('end', resolve);
    recordStream.on('error', reject);
  });
  return records;
}

async function main() {
  const input = JSON.parse(fs.readFileSync(0, 'utf8'));
  const conn = new jsforce.Connection({
    instanceUrl: input.instanceUrl,
    accessToken: input.accessToken,
    version: input.version,
  });
  const polling = { pollTimeout: 30000, pollInterval: 200 };
  const out = {};

  out.insert = await conn.bulk2.loadAndWaitForResults({
    object: 'User',
    operation: 'insert',
    input: input.insertCsv,
    ...polling,
  });

  // records with null values: jsforce writes null as #N/A, which nulls the field
  out.update = await conn.bulk2.loadAndWaitForResults({
    object: 'User',
    operation: 'update',
    input: input.updateRecords,
    ...polling,
  });

  out.query = await collect(await conn.bulk2.query(input.query, polling));

  try {
    await conn.bulk2.loadAndWaitForResults({ object: 'Account', operation: 'insert', input: 'Name\nAcme\n', ...polling });
    out.unknownObject = null;
  } catch (err) {
    out.unknownObject = errorInfo(err);
  }

  process.stdout.write(JSON.stringify(out));
}

main().catch((err) => {
  process.stdout.write(JSON.stringify({ error: errorInfo(err) }));
  process.exitCode = 1;
});
