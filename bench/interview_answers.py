"""Scripted interview answers, written the way speech-to-text hands them over (few commas, numbers as words,
"O of one"), each with the key points a human grader says it covers. Used by bench/interview.py and the tests.

Indexes refer to the key points of the question in server/dialogue/questions.json.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scripted:
    question: str  # question id
    kind: str  # correct | partial | wrong | idk: what the answer was written to be
    answer: str
    covered: tuple[int, ...]  # key points a human grader finds in it


ANSWERS: tuple[Scripted, ...] = (
    # coding
    Scripted("cc-hash-map", "correct",
             "so a hash map runs the key through a hash function to get an index into an array of buckets and "
             "lookups are O of one on average, when two keys collide you chain them in a linked list and in the "
             "worst case it degrades to O of n", (0, 1, 2, 3)),
    Scripted("cc-hash-map", "partial", "it stores the keys in buckets using a hash function", (0,)),
    Scripted("cc-hash-map", "wrong",
             "a hash map keeps everything in a sorted list and a lookup is O of n because it scans every element",
             ()),
    Scripted("cc-process-thread", "correct",
             "a process has its own address space while threads inside a process share the same memory, threads "
             "are lighter to create and switch but because they share memory you need locks to avoid race "
             "conditions", (0, 1, 2, 3)),
    Scripted("cc-process-thread", "wrong",
             "they are basically the same thing, a thread is just what windows calls a process", ()),
    Scripted("cc-big-o", "partial",
             "big o tells you how the running time grows as the input gets bigger and binary search is O of log n",
             (0, 2)),
    Scripted("cc-big-o", "idk", "um I'm not sure, I don't know", ()),
    Scripted("cc-stack-queue", "correct",
             "a stack is last in first out like the call stack when you do recursion and a queue is first in first "
             "out which you'd use for breadth first search or a job queue", (0, 1, 2, 3)),
    Scripted("cc-thread-safety", "partial",
             "I'd put a mutex around the shared data so only one thread touches it at a time", (0, 1)),
    # databases
    Scripted("db-index", "correct",
             "an index is usually a b tree that lets the database find rows without a full table scan but every "
             "insert or update has to maintain it so writes get slower and it takes extra disk space",
             (0, 1, 2, 3)),
    Scripted("db-index", "wrong", "an index is the primary key column, it's just the number of the row", ()),
    Scripted("db-acid", "partial",
             "a transaction is all or nothing so if something fails it rolls back, and durability means once it's "
             "committed it survives a crash", (0, 3)),
    Scripted("db-sql-nosql", "idk", "no idea honestly", ()),
    Scripted("db-read-scaling", "correct",
             "first I'd look at the slow queries and add indexes then put redis in front as a cache and add read "
             "replicas, keeping in mind replication lag means reads can be a bit stale", (0, 1, 2, 3)),
    Scripted("db-n-plus-one", "partial",
             "it's when you load a list and then run a separate query for each item, you fix it with a join",
             (0, 2)),
    # system design
    Scripted("sd-load-balancer", "correct",
             "it spreads incoming requests across several servers using something like round robin and it does "
             "health checks so dead servers stop getting traffic, that way you can scale horizontally", (0, 1, 2, 3)),
    Scripted("sd-load-balancer", "wrong", "a load balancer is a kind of firewall that blocks hackers", ()),
    Scripted("sd-rate-limiter", "partial",
             "I would use a token bucket per user and return four twenty nine when they go over", (0, 1, 3)),
    Scripted("sd-url-shortener", "partial",
             "you generate a short code by encoding a counter in base sixty two and store the mapping in a database",
             (0, 1)),
    Scripted("sd-caching", "idk", "I don't really know much about caching", ()),
    # cloud / devops
    Scripted("cd-container-vm", "correct",
             "a container packages the app with its dependencies and shares the host kernel so it's lightweight and "
             "starts in seconds, a virtual machine runs a full guest operating system on a hypervisor", (0, 1, 2, 3)),
    Scripted("cd-container-vm", "wrong", "a container is just a folder on the server where you put the code", ()),
    Scripted("cd-zero-downtime", "partial",
             "I'd do a canary release to a few percent of traffic and roll back if the error rate goes up",
             (0, 2, 4)),
    Scripted("cd-ci", "wrong", "continuous integration means you deploy to production every night at midnight",
             ()),
    # behavioural
    Scripted("bh-mistake", "correct",
             "I once dropped a production table by running a script against the wrong database, I told my manager "
             "straight away, we restored it from the backup within an hour, and then I added a check to the script "
             "and we made prod access read only, I learned to always double check which environment I'm on",
             (0, 1, 2, 3)),
    Scripted("bh-disagreement", "partial",
             "a colleague wanted to use mongo and I thought postgres was better so we built a small prototype with "
             "both and compared them", (0, 2)),
    Scripted("bh-underperformer", "idk", "hmm I don't know, I've never managed anyone", ()),
)  # fmt: skip

# Written after the judge's phrase lists were tuned on ANSWERS, and never used to tune them: agreement here is
# the honest figure for answers the phrase lists were not fitted to.
HELD_OUT: tuple[Scripted, ...] = (
    Scripted("cc-hash-map", "partial",
             "you compute a hash of the key and that tells you which slot to look in so it's really fast, like "
             "constant time", (0, 1)),
    Scripted("cc-process-thread", "partial",
             "processes are isolated from each other but threads can see the same variables", (0, 1)),
    Scripted("cc-big-o", "wrong", "big o is the amount of memory a program uses and binary search is O of n", ()),
    Scripted("cc-stack-queue", "partial", "a queue is like a line at the shop, first come first served", (1,)),
    Scripted("cc-memory-leak", "correct",
             "I'd watch the memory graph to confirm it keeps climbing, take two heap dumps a few hours apart and "
             "diff them, usually it's a cache without a size limit or listeners that never get removed, then I'd "
             "bound the cache and run a soak test to verify", (0, 1, 2, 3)),
    Scripted("db-sharding", "partial",
             "you pick a key like the user id and hash it to decide which database server the row goes to",
             (0, 1)),
    Scripted("db-acid", "wrong", "acid means the database is fast and uses sql", ()),
    Scripted("db-index", "idk", "I can't remember what it costs sorry", ()),
    Scripted("sd-news-feed", "partial",
             "when someone posts you push it into the cached timeline of every follower, except for accounts with "
             "millions of followers where you pull at read time", (0, 1, 2)),
    Scripted("sd-multi-region", "partial",
             "run it in two regions with the database replicated and use dns failover if one region goes down",
             (0, 1)),
    Scripted("cd-iac", "correct",
             "you describe your servers and networks in terraform files that live in git and get reviewed, so you "
             "can recreate the same environment every time instead of clicking around in the console",
             (0, 1, 2, 3)),
    Scripted("cd-monitoring", "partial",
             "I'd collect metrics with prometheus and set up grafana dashboards", (0, 3)),
    Scripted("cd-cloud-cost", "wrong", "move everything to bigger instances so it finishes faster", ()),
    Scripted("bh-deadline", "partial",
             "we had two weeks left so I cut the nice to have features and told the product manager early what "
             "would slip", (0, 1)),
)  # fmt: skip
