// Read back what the receiver stored in S3 (AWS S3, R2, MinIO, s3rver): list the objects under the
// store's prefix, then print the newest message's envelope (.json) and the message (.eml).
// It reads the same variables as the receiver (AWS_ENDPOINT_URL_S3, AWS_REGION, AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, RECEIVER_S3_FORCE_PATH_STYLE).
// Run it: npx node docs/examples/read-from-s3.ts s3://mail/inbound
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';

const store = new URL(process.argv[2] ?? process.env['RECEIVER_STORE'] ?? 's3://mail/inbound');
if (store.protocol !== 's3:') throw new Error('usage: read-from-s3.ts s3://bucket/prefix');
const bucket = store.hostname;
const prefix = store.pathname.replace(/^\/+|\/+$/g, '');

const s3 = new S3Client({ forcePathStyle: process.env['RECEIVER_S3_FORCE_PATH_STYLE'] === 'true' });

// #region list
// Keys are <prefix>/<yyyy>/<mm>/<dd>/<id>.eml and .json; ids sort by time, so keys do too.
const keys: string[] = [];
let token: string | undefined;
do {
  const page = await s3.send(
    new ListObjectsV2Command({
      Bucket: bucket,
      Prefix: prefix ? `${prefix}/` : '',
      ContinuationToken: token,
    }),
  );
  for (const object of page.Contents ?? []) if (object.Key) keys.push(object.Key);
  token = page.NextContinuationToken;
} while (token);
// A .json exists only once its .eml is complete: it is the commit marker.
const messages = keys.filter((k) => k.endsWith('.json')).sort();
// #endregion list
console.log(`${messages.length} message(s) in s3://${bucket}/${prefix}`);

const newest = messages.at(-1);
if (newest !== undefined) {
  // #region read
  const read = async (key: string) => {
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return (await object.Body?.transformToString('utf-8')) ?? '';
  };
  const envelope = JSON.parse(await read(newest)) as { mailFrom: string; rcptTo: string[]; size: number };
  const message = await read(newest.replace(/\.json$/, '.eml'));
  // #endregion read
  console.log(`newest: ${newest.replace(/\.json$/, '')}`);
  console.log(
    `envelope: from <${envelope.mailFrom}> to ${envelope.rcptTo.map((r) => `<${r}>`).join(', ')}, ${envelope.size} octets`,
  );
  console.log(message);
}
s3.destroy();
