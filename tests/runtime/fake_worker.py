"""A stand-in worker for the parent's unit tests: speaks the worker's side of the channel, and
behaves as FAKE_PLAN says, so that each test scripts how its workers start, report and end.

FAKE_PLAN is JSON: {"<worker index>": ["<behaviour>", ...]}, one behaviour per start of that
worker (the last one repeats); FAKE_LOG is a file where each start appends "<index> <pid>".
Behaviours:
- "serve": report ready every 0.05 s; `stop` → exit 0, `now` → exit 1;
- "unready": the same, reporting a problem;
- "exit:N": exit with status N at once;
- "ignore": report, and ignore every request (the parent must kill it);
- "silent": report once, then block without reporting (a blocked hub), until killed;
- "hang": never report (imports or a startup handler that hang), until killed.
"""

import json
import os
import socket
import sys
import threading
import time

from amqp_dispatcher.runtime.snapshot import empty

ENTRIES = int(os.environ.get("FAKE_ENTRIES", "1"))


def main() -> int:
    identity, _, fd = os.environ["DISPATCHER_WORKER"].partition(":")
    index = identity.partition("/")[0]
    with open(os.environ["FAKE_LOG"], "a", encoding="utf-8") as log:
        log.write(f"{index} {os.getpid()}\n")
    with open(os.environ["FAKE_LOG"], encoding="utf-8") as log:
        starts = sum(1 for line in log if line.split()[0] == index)
    plan = json.loads(os.environ["FAKE_PLAN"])[index]
    behaviour = plan[min(starts, len(plan)) - 1]
    channel = socket.socket(fileno=int(fd))
    if behaviour.startswith("exit:"):
        return int(behaviour.partition(":")[2])
    if behaviour == "hang":
        time.sleep(3600)
    problems = ["consumer x on queue 'q' holds no live consumer"] if behaviour == "unready" else []
    counts = empty(ENTRIES)
    counts["entries"][0]["received"] = 10
    counts["service"]["consuming_open"] = 1
    counts["entries"][0]["consuming"] = 1
    line = (json.dumps({"snapshot": counts, "not_ready": problems}) + "\n").encode()
    if behaviour == "silent":
        channel.sendall(line)
        time.sleep(3600)
    requests: list[bytes] = []

    def listen() -> None:
        reader = channel.makefile("rb")
        while request := reader.readline():
            requests.append(request.strip())
        requests.append(b"gone")

    threading.Thread(target=listen, daemon=True).start()
    while True:
        try:
            channel.sendall(line)
        except OSError:
            return 0
        if behaviour != "ignore":
            if b"now" in requests:
                return 1
            if b"stop" in requests or b"gone" in requests:
                return 0
        time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main())
