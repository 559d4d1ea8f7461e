"""Stand-in for the seed notebook's helper module ``assistant_utils``.

The notebook (shared/seed/000_76996527503b6253.txt) imports
``print_thread_messages, upload_files, loop_until_completed, create_assistant_run``
from a module it does not ship. This one does what the notebook needs of each, with
the notebook's call shapes: ``create_assistant_run(client, assistant, thread, text)``
returns a run whose ``instructions`` are ``text`` (the notebook's printed run shows
them), and ``print_thread_messages(client, thread)`` pretty-prints ``"role:text"``
for each message, newest first (the list's default order), as the notebook's output
shows. Written against the SDK surface common to openai 1.6.1 and 3.57.0.
"""

import time
from pprint import pprint

TERMINAL_OR_ACTION = ("completed", "failed", "cancelled", "expired", "incomplete", "requires_action")


def upload_files(client, paths):
    """Upload each path with purpose "assistants"; returns the file objects."""
    uploaded = []
    for path in paths:
        with open(path, "rb") as f:
            uploaded.append(client.files.create(file=f, purpose="assistants"))
    return uploaded


def _text_of(message):
    for part in message.content or []:
        if getattr(part, "type", None) == "text":
            return part.text.value
    return ""


def print_thread_messages(client, thread, content_value=True):
    """Pretty-print the thread's messages, newest first: ``"role:text"``, or the
    whole message object when ``content_value`` is false."""
    for message in client.beta.threads.messages.list(thread_id=thread.id):
        if content_value:
            pprint(f"{message.role}:{_text_of(message)}")
        else:
            pprint(message)


def loop_until_completed(client, thread, run, interval=0.5):
    """Poll the run until it needs the caller (requires_action) or has ended;
    prints each status it sees and returns the last run object."""
    while run.status not in TERMINAL_OR_ACTION:
        time.sleep(interval)
        run = client.beta.threads.runs.retrieve(thread_id=thread.id, run_id=run.id)
        print(run.status)
    return run


def create_assistant_run(client, assistant, thread, instructions):
    """Start a run of ``assistant`` on ``thread`` whose instructions are ``instructions``."""
    return client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id,
                                           instructions=instructions)
