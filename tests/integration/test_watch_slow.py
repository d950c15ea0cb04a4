"""A slow watcher never blocks writers or other watchers (issue 4, item 1):
a client that opens a watch and stops reading is cut off once its queue is
full, while writes keep their pace and a reading watcher gets every event."""

import socket
import ssl
import threading
import time

from harness import ServerTestCase, collection_path, model

BIG = "x" * 200_000          # one annotation of 200 kB per write: few writes fill the queue
WRITES = 80                  # 16 MB of events: twice the per-watcher queue bound (8 MiB)


class SlowWatcherTest(ServerTestCase):

    def open_unread_watch(self, path):
        """A watch over HTTP/1.1 whose socket we never read: its TCP buffers fill, then our queue."""
        raw = socket.create_connection(("127.0.0.1", self.server.port))
        # Small, so that the kernel's buffers hold far less than the 16 MB written; not
        # tiny, so that draining what is in flight at the end takes a second, not minutes.
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        s = self.server.ssl_context().wrap_socket(raw, server_hostname="localhost")
        s.sendall((f"GET {path}?watch=1 HTTP/1.1\r\nHost: localhost\r\n"
                   f"Authorization: Bearer {self.server.token}\r\nAccept: application/json\r\n\r\n").encode())
        return s

    def reading_watch(self, path, seen, stop):
        c = self.server.connection(timeout=60)
        c.request("GET", f"{path}?watch=1&timeoutSeconds=60",
                  headers={"Authorization": f"Bearer {self.server.token}"})
        r = c.getresponse()
        while not stop.is_set():
            line = r.readline()
            if not line:
                break
            if b'"type":"ADDED"' in line[:40]:
                seen.append(1)
        c.close()

    def test_slow_watcher_is_closed_and_blocks_nobody(self):
        ns = self.new_namespace()
        path = collection_path("LanguageModel", ns)
        slow = self.open_unread_watch(path)
        seen, stop = [], threading.Event()
        reader = threading.Thread(target=self.reading_watch, args=(path, seen, stop), daemon=True)
        reader.start()
        time.sleep(0.3)

        started = time.monotonic()
        for i in range(WRITES):
            m = model(f"big-{i}", ns)
            m["metadata"]["annotations"] = {"example.com/blob": BIG}
            r = self.api("POST", path, m)
            self.assertEqual(r.status, 201, r)
        elapsed = time.monotonic() - started
        # the writes did not wait for the watcher that does not read
        self.assertLess(elapsed, 30, f"{WRITES} writes took {elapsed:.1f}s")

        deadline = time.monotonic() + 20
        while len(seen) < WRITES and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        self.assertEqual(len(seen), WRITES, "the reading watcher missed events")
        self.assertIn("does not keep up", self.server.log_text(),
                      "the slow watcher was not cut off")

        # reading the slow watch now gives what was in flight, then the end of the stream
        data, ended = self.drain(slow, 20)
        slow.close()
        self.assertTrue(ended, f"the slow watch is still open after {len(data)} bytes: "
                               f"{data[:200]!r} ... {data[-200:]!r}")
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:200])
        self.assertLess(data.count(b'"type":"ADDED"'), WRITES,
                        "the slow watcher got every event: it was not cut off")

    def drain(self, sock, timeout):
        """Read until the server ends the stream: (bytes read, ended). Ended means
        the last chunk of the chunked body (the response is over; the connection
        may stay open for keep-alive), EOF, a TLS close or a reset. A read that
        waits `timeout` seconds for more means the stream is still open. CRLF 0
        CRLF CRLF cannot occur inside an event: JSON escapes control characters."""
        sock.settimeout(timeout)
        data = bytearray()
        while True:
            try:
                chunk = sock.recv(1 << 16)
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError, ConnectionResetError):
                return bytes(data), True
            except (socket.timeout, TimeoutError):
                return bytes(data), False
            if not chunk:
                return bytes(data), True
            data += chunk
            if data.endswith(b"\r\n0\r\n\r\n"):
                return bytes(data), True
