#!/usr/bin/python3
"""python3-tdb (Debian's binding) against whichever libtdb.so.1 is loaded.

Run with /usr/bin/python3 (the binding is for Debian's python), optionally
with LD_LIBRARY_PATH pointing at our library:  test_pytdb.py [WORKDIR]
"""
import os
import shutil
import sys
import tempfile
import unittest

import tdb

WORKDIR = None


class Base(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(dir=WORKDIR)
        self.path = os.path.join(self.dir, "py.tdb")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def assertTdbError(self, code, fn, *args):
        with self.assertRaises(RuntimeError) as cm:
            fn(*args)
        self.assertEqual(cm.exception.args[0], code, cm.exception.args)
        self.assertIsInstance(cm.exception.args[1], str)
        return cm.exception.args[1]


class OpenTests(Base):
    def test_constants(self):
        self.assertEqual((tdb.REPLACE, tdb.INSERT, tdb.MODIFY), (1, 2, 3))
        self.assertEqual(tdb.DEFAULT, 0)
        self.assertEqual(tdb.CLEAR_IF_FIRST, 1)
        self.assertEqual(tdb.INTERNAL, 2)
        self.assertEqual(tdb.NOLOCK, 4)
        self.assertEqual(tdb.NOMMAP, 8)
        self.assertEqual(tdb.CONVERT, 16)
        self.assertEqual(tdb.BIGENDIAN, 32)
        self.assertEqual(tdb.NOSYNC, 64)
        self.assertEqual(tdb.SEQNUM, 128)
        self.assertEqual(tdb.VOLATILE, 256)
        self.assertEqual(tdb.ALLOW_NESTING, 512)
        self.assertEqual(tdb.DISALLOW_NESTING, 1024)
        self.assertEqual(tdb.INCOMPATIBLE_HASH, 2048)

    def test_open_create_and_reopen(self):
        db = tdb.open(self.path, 0, tdb.DEFAULT, os.O_CREAT | os.O_RDWR, 0o600)
        self.assertEqual(db.filename, os.fsencode(self.path))
        self.assertEqual(db.hash_size, 131)
        self.assertGreater(db.map_size, 0)
        self.assertEqual(db.map_size, os.path.getsize(self.path))
        self.assertTrue(db.flags & tdb.ALLOW_NESTING)
        self.assertIn(self.path, repr(db))
        db[b"k"] = b"v"
        db.close()
        db = tdb.Tdb(self.path, hash_size=7, tdb_flags=0, flags=os.O_RDWR)
        self.assertEqual(db.hash_size, 131)
        self.assertEqual(db[b"k"], b"v")
        db.close()

    def test_keyword_open_hash_size(self):
        db = tdb.Tdb(self.path, hash_size=17, flags=os.O_CREAT | os.O_RDWR)
        self.assertEqual(db.hash_size, 17)
        db.close()

    def test_missing_file(self):
        with self.assertRaises(IOError) as cm:
            tdb.open(os.path.join(self.dir, "nope.tdb"), flags=os.O_RDWR)
        self.assertEqual(cm.exception.errno, 2)

    def test_garbage_file(self):
        with open(self.path, "wb") as f:
            f.write(b"x" * 2000)
        with self.assertRaises(IOError):
            tdb.open(self.path, flags=os.O_RDWR)

    def test_internal(self):
        db = tdb.Tdb(tdb_flags=tdb.INTERNAL)
        db[b"a"] = b"1"
        self.assertEqual(db[b"a"], b"1")
        self.assertTrue(db.flags & tdb.INTERNAL)
        self.assertFalse(os.path.exists("__TDB_INTERNAL__"))
        db.close()

    def test_readonly(self):
        db = tdb.open(self.path, flags=os.O_CREAT | os.O_RDWR)
        db[b"a"] = b"1"
        db.close()
        db = tdb.open(self.path, flags=os.O_RDONLY)
        self.assertEqual(db[b"a"], b"1")
        msg = self.assertTdbError(10, db.store, b"b", b"2")  # TDB_ERR_RDONLY
        self.assertEqual(msg, "write not permitted")
        self.assertTdbError(10, db.delete, b"a")
        self.assertTdbError(9, db.transaction_start)  # TDB_ERR_EINVAL
        db.close()

    def test_incompatible_hash_and_convert(self):
        db = tdb.open(self.path, tdb_flags=tdb.INCOMPATIBLE_HASH, flags=os.O_CREAT | os.O_RDWR)
        db[b"x"] = b"y"
        db.close()
        db = tdb.open(self.path)
        self.assertEqual(db[b"x"], b"y")
        db.close()
        p2 = self.path + ".be"
        db = tdb.open(p2, tdb_flags=tdb.CONVERT, flags=os.O_CREAT | os.O_RDWR)
        db[b"big"] = b"endian"
        db.close()
        with open(p2, "rb") as f:
            hdr = f.read(40)
        self.assertEqual(hdr[32:36], bytes([0x26, 0x01, 0x19, 0x6D]))
        db = tdb.open(p2)
        self.assertTrue(db.flags & tdb.CONVERT)
        self.assertTrue(db.flags & tdb.BIGENDIAN)
        self.assertEqual(db[b"big"], b"endian")
        db.close()

    def test_clear_if_first(self):
        db = tdb.open(self.path, flags=os.O_CREAT | os.O_RDWR)
        db[b"old"] = b"1"
        db.close()
        db = tdb.open(self.path, tdb_flags=tdb.CLEAR_IF_FIRST)
        self.assertNotIn(b"old", db)
        db.close()

    def test_close_twice_and_use_after_close(self):
        db = tdb.open(self.path, flags=os.O_CREAT | os.O_RDWR)
        db.close()
        db.close()
        msg = self.assertTdbError(2, db.get, b"a")
        self.assertEqual(msg, "Database is already closed")


class RecordTests(Base):
    def setUp(self):
        super().setUp()
        self.db = tdb.open(self.path, tdb_flags=tdb.NOSYNC, flags=os.O_CREAT | os.O_RDWR)

    def tearDown(self):
        self.db.close()
        super().tearDown()

    def test_store_flags(self):
        db = self.db
        db.store(b"a", b"1")
        self.assertEqual(db.get(b"a"), b"1")
        msg = self.assertTdbError(5, db.store, b"a", b"2", tdb.INSERT)  # TDB_ERR_EXISTS
        self.assertEqual(msg, "Record exists")
        self.assertTdbError(8, db.store, b"b", b"2", tdb.MODIFY)  # TDB_ERR_NOEXIST
        db.store(b"a", b"3", tdb.MODIFY)
        self.assertEqual(db[b"a"], b"3")
        db.store(b"a", b"4", tdb.REPLACE)
        self.assertEqual(db[b"a"], b"4")
        db.store(b"c", b"", tdb.INSERT)
        self.assertEqual(db.get(b"c"), b"")

    def test_storev(self):
        self.db.storev(b"v", [b"ab", b"", b"cd"])
        self.assertEqual(self.db[b"v"], b"abcd")
        self.assertTdbError(5, self.db.storev, b"v", [b"x"], tdb.INSERT)
        self.db.storev(b"v", [b"x", b"y"], tdb.MODIFY)
        self.assertEqual(self.db[b"v"], b"xy")

    def test_get_missing(self):
        self.assertIsNone(self.db.get(b"missing"))
        with self.assertRaises(KeyError):
            self.db[b"missing"]

    def test_append(self):
        self.db.append(b"ap", b"one")
        self.db.append(b"ap", b"two")
        self.assertEqual(self.db[b"ap"], b"onetwo")

    def test_delete(self):
        self.db[b"d"] = b"1"
        self.assertIn(b"d", self.db)
        self.db.delete(b"d")
        self.assertNotIn(b"d", self.db)
        self.assertTdbError(8, self.db.delete, b"d")
        self.db[b"e"] = b"1"
        del self.db[b"e"]
        self.assertNotIn(b"e", self.db)
        with self.assertRaises(RuntimeError):
            del self.db[b"e"]

    def test_binary(self):
        key = bytes(range(256))
        val = bytes(reversed(range(256))) * 300
        self.db[key] = val
        self.assertEqual(self.db[key], val)

    def test_type_errors(self):
        with self.assertRaises(TypeError):
            self.db["text key"]
        with self.assertRaises(TypeError):
            self.db[b"k"] = "text value"

    def test_iteration(self):
        want = {b"key%d" % i: b"val%d" % i for i in range(500)}
        for k, v in want.items():
            self.db[k] = v
        self.assertEqual(sorted(self.db.keys()), sorted(want))
        self.assertEqual(sorted(iter(self.db)), sorted(want))
        self.assertEqual(sorted(list(self.db)), sorted(want))
        seen = []
        k = self.db.firstkey()
        while k is not None:
            seen.append(k)
            k = self.db.nextkey(k)
        self.assertEqual(sorted(seen), sorted(want))
        for k in list(want)[::2]:
            del self.db[k]
        self.assertEqual(len(list(self.db.keys())), 250)

    def test_empty_iteration(self):
        self.assertIsNone(self.db.firstkey())
        self.assertEqual(list(self.db), [])

    def test_clear(self):
        for i in range(100):
            self.db[b"%d" % i] = b"x"
        self.db.clear()
        self.assertEqual(list(self.db), [])

    def test_repack_and_freelist(self):
        for i in range(300):
            self.db[b"%d" % i] = b"x" * (i % 50)
        for i in range(0, 300, 2):
            del self.db[b"%d" % i]
        self.assertGreater(self.db.freelist_size, 1)
        self.db.repack()
        self.assertLessEqual(self.db.freelist_size, 2)
        self.assertEqual(len(list(self.db)), 150)
        self.assertEqual(self.db[b"299"], b"x" * (299 % 50))

    def test_flags(self):
        self.assertTrue(self.db.flags & tdb.NOSYNC)
        self.db.remove_flags(tdb.NOSYNC)
        self.assertFalse(self.db.flags & tdb.NOSYNC)
        self.db.add_flags(tdb.NOSYNC)
        self.assertTrue(self.db.flags & tdb.NOSYNC)
        self.db.add_flags(tdb.DISALLOW_NESTING)
        self.assertTrue(self.db.flags & tdb.DISALLOW_NESTING)
        self.assertFalse(self.db.flags & tdb.ALLOW_NESTING)

    def test_max_dead(self):
        self.db.max_dead = 10
        for i in range(50):
            self.db[b"%d" % i] = b"v"
        for i in range(50):
            del self.db[b"%d" % i]
        self.assertEqual(list(self.db), [])
        self.db[b"again"] = b"v"
        self.assertEqual(self.db[b"again"], b"v")

    def test_seqnum(self):
        self.assertEqual(self.db.seqnum, 0)
        self.db.enable_seqnum()
        s = self.db.seqnum
        self.db[b"a"] = b"1"
        self.assertEqual(self.db.seqnum, s + 1)
        self.db.increment_seqnum_nonblock()
        self.assertEqual(self.db.seqnum, s + 2)
        del self.db[b"a"]
        self.assertEqual(self.db.seqnum, s + 3)

    def test_locks(self):
        self.db.lock_all()
        self.db[b"l"] = b"1"
        self.db.unlock_all()
        self.db.read_lock_all()
        self.assertEqual(self.db[b"l"], b"1")
        self.db.read_unlock_all()
        with self.assertRaises(RuntimeError):
            self.db.unlock_all()

    def test_reopen(self):
        self.db[b"r"] = b"1"
        self.db.reopen()
        self.assertEqual(self.db[b"r"], b"1")


class TransactionTests(Base):
    def setUp(self):
        super().setUp()
        self.db = tdb.open(self.path, flags=os.O_CREAT | os.O_RDWR)

    def tearDown(self):
        self.db.close()
        super().tearDown()

    def test_commit(self):
        self.db.transaction_start()
        self.db[b"t"] = b"1"
        self.assertEqual(self.db[b"t"], b"1")
        self.db.transaction_commit()
        self.assertEqual(self.db[b"t"], b"1")

    def test_cancel(self):
        self.db[b"keep"] = b"1"
        self.db.transaction_start()
        self.db[b"t"] = b"1"
        del self.db[b"keep"]
        self.db.transaction_cancel()
        self.assertNotIn(b"t", self.db)
        self.assertEqual(self.db[b"keep"], b"1")

    def test_prepare_commit(self):
        self.db.transaction_start()
        self.db[b"p"] = b"1"
        self.db.transaction_prepare_commit()
        self.db.transaction_commit()
        self.assertEqual(self.db[b"p"], b"1")

    def test_nesting(self):
        self.db.transaction_start()
        self.db.transaction_start()
        self.db[b"n"] = b"1"
        self.db.transaction_commit()
        self.db.transaction_commit()
        self.assertEqual(self.db[b"n"], b"1")
        self.db.add_flags(tdb.DISALLOW_NESTING)
        self.db.transaction_start()
        self.assertTdbError(11, self.db.transaction_start)  # TDB_ERR_NESTING
        self.db.transaction_cancel()

    def test_errors_without_transaction(self):
        with self.assertRaises(RuntimeError):
            self.db.transaction_commit()
        with self.assertRaises(RuntimeError):
            self.db.transaction_cancel()

    def test_visible_to_other_process_only_after_commit(self):
        self.db[b"base"] = b"0"
        self.db.transaction_start()
        self.db[b"base"] = b"1"
        r, w = os.pipe()
        os.set_inheritable(w, True)
        pid = os.fork()
        if pid == 0:
            try:
                os.close(r)
                os.execv(sys.executable, [sys.executable, "-c",
                    "import tdb,os,sys; db=tdb.open(sys.argv[1], flags=os.O_RDONLY); "
                    "os.write(int(sys.argv[2]), db[b'base'])", self.path, str(w)])
            finally:
                os._exit(99)
        os.close(w)
        got = os.read(r, 100)
        os.close(r)
        os.waitpid(pid, 0)
        self.assertEqual(got, b"0")
        self.db.transaction_commit()


class TextTests(Base):
    def test_text(self):
        db = tdb.open(self.path, flags=os.O_CREAT | os.O_RDWR)
        t = db.text
        self.assertIs(t.raw, db)
        t["ключ"] = "значение"
        self.assertEqual(t["ключ"], "значение")
        self.assertEqual(db["ключ".encode()], "значение".encode())
        self.assertIn("ключ", t)
        t.store("a", "1")
        t.append("a", "2")
        self.assertEqual(t.get("a"), "12")
        self.assertIsNone(t.get("zz"))
        self.assertEqual(sorted(t), ["a", "ключ"])
        k = t.firstkey()
        self.assertIn(k, ("a", "ключ"))
        self.assertIn(t.nextkey(k), ("a", "ключ"))
        t.delete("a")
        del t["ключ"]
        self.assertEqual(list(t), [])
        db.close()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        WORKDIR = sys.argv.pop(1)
    prog = unittest.main(exit=False, verbosity=0)
    r = prog.result
    if not r.wasSuccessful() or r.testsRun < 30:
        sys.exit(1)
