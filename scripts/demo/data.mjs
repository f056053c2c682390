// Sample data of every Redis type for the demo's source, and a writer that keeps changing it
// (counters, lists, hashes, streams, sets, sorted sets, expiring keys, a transaction and a
// cross-slot MSET now and then), so the replica source has a stream to follow.
import { Buffer } from 'node:buffer';
import { clearInterval, setInterval } from 'node:timers';
import Redis from 'ioredis';

const USERS = 2000;

/**
 * Fills dbs 0, 1 and 2 of the source. Returns the number of keys written.
 * @param {{ host: string, port: number }} at
 */
export async function seed(at) {
  const db0 = new Redis({ ...at, db: 0, lazyConnect: true });
  const db1 = new Redis({ ...at, db: 1, lazyConnect: true });
  const db2 = new Redis({ ...at, db: 2, lazyConnect: true });
  try {
    await Promise.all([db0.connect(), db1.connect(), db2.connect()]);
    const p = db0.pipeline();
    for (let i = 1; i <= USERS; i++) {
      // hash tags keep one user's keys in one slot of the destination cluster
      p.hset(`user:{${i}}:profile`, 'name', `user ${i}`, 'email', `user${i}@example.com`, 'visits', String(i % 97));
      p.set(`user:{${i}}:last-seen`, String(Date.now() - i * 1000));
      if (i % 4 === 0) p.sadd(`user:{${i}}:tags`, 'blue', 'green', `group-${i % 10}`);
    }
    p.set('counter:visits', '0');
    p.set('counter:orders', '1000'); // an integer-encoded string
    p.set('greeting', 'Hello from the source Redis');
    p.set(Buffer.from([0x62, 0x69, 0x6e, 0x00, 0xff, 0x3a, 0x6b]), Buffer.from([0x00, 0x01, 0xfe, 0xff])); // binary key and value
    p.set('cache:homepage', '<html>…</html>', 'EX', 3600); // expires in an hour
    p.setbit('bitmap:logins', 4242, 1);
    p.rpush('events:recent', ...Array.from({ length: 50 }, (_, i) => `event ${i}`));
    p.rpush('queue:big', ...Array.from({ length: 5000 }, (_, i) => `job-${i}`)); // a quicklist
    p.sadd('online', ...Array.from({ length: 20 }, (_, i) => `user:${i + 1}`));
    p.sadd('numbers', 1, 2, 3, 5, 8, 13); // an intset
    p.zadd('leaderboard', ...Array.from({ length: 100 }, (_, i) => [String(i * 10), `player:${i}`]).flat());
    p.geoadd('places', 13.361389, 38.115556, 'Palermo', 15.087269, 37.502669, 'Catania');
    p.pfadd('visitors:hll', ...Array.from({ length: 300 }, (_, i) => `v${i}`));
    p.hset('stats:page:{home}', 'views', '0', 'likes', '0');
    p.hset('config:big', ...Array.from({ length: 1000 }, (_, i) => [`field${i}`, `value ${i}`]).flat()); // a hashtable
    for (let i = 0; i < 200; i++) p.xadd('stream:orders', '*', 'order', String(i), 'amount', String((i * 7) % 100));
    p.xgroup('CREATE', 'stream:orders', 'billing', '0');
    await p.exec();
    await db0.xreadgroup('GROUP', 'billing', 'worker-1', 'COUNT', 10, 'STREAMS', 'stream:orders', '>'); // a pending list

    const p1 = db1.pipeline();
    for (let i = 0; i < 200; i++) p1.set(`session:${i}`, `token-${i}`, 'EX', 600 + i);
    p1.hset('session:meta', 'created', String(Date.now()));
    await p1.exec();

    await db2.mset('feature:dark-mode', 'on', 'feature:beta', 'off', 'feature:max-upload-mb', '25');
    const sizes = await Promise.all([db0.dbsize(), db1.dbsize(), db2.dbsize()]);
    return sizes.reduce((a, b) => a + b, 0);
  } finally {
    db0.disconnect();
    db1.disconnect();
    db2.disconnect();
  }
}

/**
 * Writes continuously until stop() is called: about `rate` ticks a second, each a handful of
 * commands. Returns { stop(): Promise<void>, writes(): number }.
 * @param {{ host: string, port: number }} at
 */
export function startWriter(at, rate = 10) {
  const db0 = new Redis({ ...at, db: 0 });
  const db1 = new Redis({ ...at, db: 1 });
  let writes = 0;
  let tick = 0;
  let running = true;
  let current = Promise.resolve();
  const ignore = () => {}; // a write refused while stopping is of no interest

  async function once() {
    tick++;
    const user = 1 + (tick % USERS);
    const p = db0.pipeline();
    p.incr('counter:visits');
    p.hincrby('stats:page:{home}', 'views', 1);
    p.lpush('events:recent', `visit ${tick} by user ${user}`);
    p.ltrim('events:recent', 0, 99);
    p.xadd('stream:orders', 'MAXLEN', '~', '1000', '*', 'order', String(1000 + tick), 'amount', String(tick % 100));
    p.zincrby('leaderboard', 1, `player:${tick % 100}`);
    p.hset(`user:{${user}}:profile`, 'visits', String(tick));
    p.set(`user:{${user}}:last-seen`, String(Date.now()));
    writes += 8;
    if (tick % 5 === 0) {
      p.sadd('online', `user:${user}`);
      p.srem('online', `user:${user - 20}`);
      writes += 2;
    }
    if (tick % 20 === 0) {
      // keys of several hash slots: the slot router splits this per slot
      p.mset(`cross:a:${tick % 10}`, String(tick), `cross:b:${tick % 10}`, String(tick));
      writes += 1;
    }
    const results = await p.exec();
    for (const [err] of results ?? []) if (err) throw err;
    if (tick % 20 === 0) {
      // a transaction: the sink applies it as one MULTI/EXEC per slot
      await db0.multi().incr('counter:orders').rpush('queue:big', `job-x${tick}`).exec();
      writes += 2;
    }
    await db1.set(`session:${tick % 500}`, `token-${tick}`, 'EX', 120);
    writes++;
  }

  const timer = setInterval(() => {
    if (!running) return;
    current = current.then(once).catch((err) => {
      if (running) console.error(`writer: ${err.message}`);
    });
  }, Math.max(1, Math.round(1000 / rate)));

  return {
    writes: () => writes,
    async stop() {
      running = false;
      clearInterval(timer);
      await current.catch(ignore);
      db0.disconnect();
      db1.disconnect();
    },
  };
}
