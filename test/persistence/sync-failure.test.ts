// A failed fdatasync of the write-ahead log (sync = full). A disk that fails a sync cannot be
// had here, so the store's sync is wrapped to fail once; everything else is the real store on
// a real file. After the failure Linux may report later syncs as good although the failed
// pages never reached the disk, so the store must acknowledge nothing more.
import { fdatasync } from 'node:fs'
import { join } from 'node:path'
import test from 'ava'
import { SqliteStore } from '../../runtime/persistence/sqlite-store.ts'
import { tmpDir } from '../helpers/mqtt.ts'

test('after a failed WAL sync the store refuses every later write and flush, and reports the failure once', async (t) => {
  const dir = await tmpDir(t)
  let syncs = 0
  const store = new SqliteStore({
    file: join(dir, 'tapmq.db'),
    sync: 'full',
    syncWal: (fd, done) => {
      syncs++
      if (syncs === 2) done(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }))
      else fdatasync(fd, done)
    }
  })
  const failures: Error[] = []
  store.onSyncFailure = (err) => failures.push(err)
  await store.setup({ id: 'broker' })
  t.teardown(() => store.destroy().catch(() => {}))

  await store.addSubscriptions({ id: 'first' }, [{ topic: 'a/#', qos: 1 }])
  t.is(syncs, 1)
  const refused = { message: /could not sync its write-ahead log \(EIO: i\/o error, fdatasync\).*restart tapmq/ }
  // the batch whose sync failed is not acknowledged
  await t.throwsAsync(store.addSubscriptions({ id: 'second' }, [{ topic: 'b/#', qos: 1 }]), refused)
  // nor is anything after it, although the next sync would succeed
  await t.throwsAsync(store.addSubscriptions({ id: 'third' }, [{ topic: 'c/#', qos: 1 }]), refused)
  await t.throwsAsync(store.flush(), refused)
  await t.throwsAsync(store.subscriptionsByClient({ id: 'first' }), refused)
  t.is(syncs, 2, 'no sync after the failed one')
  t.is(failures.length, 1)
  t.regex(failures[0]!.message, refused.message)
})
