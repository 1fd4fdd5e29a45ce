"""What counting per segment costs Redis: the answer script's time per call with and without
segments, measured by Redis itself (INFO commandstats), on a private Redis started here.

    python -m loadgen.segment_cost [--answers 20000] [--rounds 3]

Each round counts the same stream of answers (every participant answers, a fifth change their
mind) on fresh keys: once with the participant in no segment, once in one of four, once in one
of four of two profile questions. Redis's own microseconds per script call leave out the client
and the network, which is what the answer path adds on a busy machine, so the ratio is the
script's own cost.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time

import redis

from devenv.private_redis import redis_server_binary
from polls import tally

KINDS = {
    "single": lambda rng: rng.randint(1, 4),
    "multiple": lambda rng: rng.sample(range(1, 6), 2),
}
CASES = {"no segments": 0, "1 profile question": 1, "2 profile questions": 2}


def start_redis(directory: str) -> tuple[subprocess.Popen, str]:
    binary = redis_server_binary()
    socket_path = os.path.join(directory, "redis.sock")
    process = subprocess.Popen(
        [binary, "--port", "0", "--unixsocket", socket_path, "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    for _attempt in range(100):
        if os.path.exists(socket_path):
            break
        time.sleep(0.05)
    return process, socket_path


def usec_per_script_call(client: redis.Redis) -> tuple[int, float]:
    stats = client.info("commandstats").get("cmdstat_evalsha", {"calls": 0, "usec": 0})
    return int(stats["calls"]), float(stats["usec"])


def run_case(client, script, kind: str, profiles: int, answers: int, seed: int, question: int):
    rng = random.Random(seed)  # noqa: S311 - a repeatable stream, not a secret
    keys = tally.question_keys(question)
    script_keys = [
        keys["answers"],
        keys["counts"],
        keys["meta"],
        keys["seen"],
        keys["log"],
        keys["changes"],
        tally.aside_key(question),
        keys["segof"],
        keys["segcounts"],
    ]
    client.hset(keys["meta"], "open", "1")
    participants = answers * 4 // 5
    client.config_resetstat()
    pipe = client.pipeline(transaction=False)
    for index in range(answers):
        participant = f"p{index % participants}"
        tags = ",".join(f"{900 + p}:{rng.randint(1, 4)}" for p in range(profiles))
        value = KINDS[kind](rng)
        args = [
            participant,
            f"m{index}",
            tally.encode_value(value),
            ",".join(tally.buckets_for(kind, value)),
            "0",
            str(tally.MOST_CHANGES_PER_QUESTION),
            "0",
            tags,
            "0",
        ]
        script(keys=script_keys, args=args, client=pipe)
        if len(pipe) >= 200:
            pipe.execute()
    pipe.execute()
    calls, usec = usec_per_script_call(client)
    if calls != answers:
        raise RuntimeError(f"Redis ran {calls} script calls for {answers} answers")
    client.delete(*script_keys)
    return usec / calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        process, socket_path = start_redis(directory)
        try:
            client = redis.Redis(unix_socket_path=socket_path)
            script = client.register_script(tally.RECORD_ANSWER)
            question = 1
            print(f"{args.answers} answers per run, microseconds of Redis per script call")
            for kind in KINDS:
                for round_number in range(1, args.rounds + 1):
                    figures = []
                    for name, profiles in CASES.items():
                        question += 1
                        cost = run_case(
                            client, script, kind, profiles, args.answers, round_number, question
                        )
                        figures.append(f"{name} {cost:.2f}")
                    print(f"{kind:8} round {round_number}: " + " | ".join(figures))
        finally:
            process.terminate()
            process.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
