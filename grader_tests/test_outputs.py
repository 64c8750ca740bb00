"""What a hostile kernel's messages can bring into the grader (convgrader/outputs.py, and
GuardedExecute in convgrader/grading.py): bounded messages, outputs rebuilt by an allow-list,
the grader's execution counts, and a grade for every notebook."""
import os
from collections import Counter

import nbformat
import pytest
from jupyter_client.session import Session
from nbformat.v4 import new_code_cell, new_notebook, new_output

from convgrader import outputs
from convgrader.grading import GuardedExecute
from convgrader.kernels import bwrap
from convgrader.outputs import REFUSED, BoundedSession, clean_output
from convgrader.sanitize import SanitizeSubmission
from grading_kernels import stop_grading_servers
from sanitized_pages import formgrade_page, sanitized

KEY = b"a key the kernel knows too"
PARENT = {"msg_id": "request-1", "msg_type": "execute_request"}


def frames(msg_type="display_data", content=b'{"data": {"text/plain": "x"}, "metadata": {}}',
           metadata=b"{}", header=None, parent=None, key=KEY):
    """A message as a kernel sends it, its JSON frames written by hand."""
    import json
    signer = Session(key=key)
    head = json.dumps(header or {"msg_id": "m", "msg_type": msg_type, "version": "5.3"}).encode()
    frames = [head, json.dumps(parent or PARENT).encode(), metadata, content]
    return [b"<IDS|MSG>", signer.sign(frames), *frames]


def received(msg_list):
    session = BoundedSession.like(Session(key=KEY))
    _, msg_list = session.feed_identities(msg_list)
    return session.deserialize(msg_list)


def test_an_honest_message_passes_with_its_size_on_the_wire():
    sent = frames()
    msg = received(sent)
    assert (msg["msg_type"], msg["content"]["data"], msg["parent_header"]) == (
        "display_data", {"text/plain": "x"}, PARENT)
    assert msg["wire_bytes"] == sum(len(f) for f in sent[1:])


@pytest.mark.parametrize("metadata, reason", [
    # The red team's: 2,000,000 empty lists, which counted 0 characters (6 MB), and half.
    (b'{"m": [' + b"[]," * 1_999_999 + b"[]]}", "a message of 6,000,"),
    (b'{"m": [' + b"[]," * 999_999 + b"[]]}", "holding over 10,000 lists and objects"),
    # A million lists deep: json.loads raises RecursionError on it.
    (b'{"m": ' + b"[" * 1_000_000 + b"]" * 1_000_000 + b"}", "holding over 10,000 lists"),
    (b'{"m": ' + b"[" * 65 + b"]" * 65 + b"}", "nested over 64 levels deep"),
    (b'{"m": "' + b"x" * 5 * 2 ** 20 + b'"}', "a message of 5,243,"),
])
def test_a_message_is_refused_by_its_size_or_structure_before_parsing(metadata, reason):
    msg = received(frames(metadata=metadata))
    assert msg["msg_type"] == REFUSED and msg["parent_header"] == PARENT  # its cell is told
    assert msg["content"]["reason"].startswith("output refused by the grader: ")
    assert reason in msg["content"]["reason"]


def test_brackets_inside_strings_are_text_not_structure():
    text = b'"' + b"[[{" * 100_000 + b'"'
    msg = received(frames(content=b'{"data": {"text/plain": ' + text + b'}, "metadata": {}}'))
    assert msg["msg_type"] == "display_data"


@pytest.mark.parametrize("msg_list", [
    [b"no delimiter", b"{}"],
    frames(key=b"another key"),
    frames(content=b'{"data": '),
    frames(content=b'["a", "list"]'),
    frames(header={"msg_type": ["display_data"]}),
    frames(msg_type="status", content=b'{"execution_state": ["idle"]}'),
    frames(content=b'{"data": ' + b"1" * 10_000 + b"}"),  # past Python's int digits limit
    frames()[:4],
], ids=["no delimiter", "bad signature", "invalid JSON", "content not an object",
        "type not a str", "status without a state", "huge number", "too few frames"])
def test_an_unreadable_message_is_refused_never_raised(msg_list):
    assert received(msg_list)["msg_type"] == REFUSED


def test_a_replayed_message_is_refused():
    session = BoundedSession.like(Session(key=KEY))
    sent = frames()[1:]
    assert session.deserialize(sent)["msg_type"] == "display_data"
    assert session.deserialize(sent)["msg_type"] == REFUSED


def test_a_reply_the_session_refuses_still_answers_its_request():
    msg = received(frames(msg_type="execute_reply", content=b'{"status": ["ok"]}'))
    assert (msg["msg_type"], msg["parent_header"]) == ("execute_reply", PARENT)
    assert msg["content"]["status"] == "error" and msg["content"]["ename"] == "OutputRefused"


def test_display_fields_of_the_wrong_type_become_empty():
    msg = received(frames(content=b'{"data": ["text/plain"], "metadata": 7, "transient": "d"}'))
    assert {k: msg["content"][k] for k in ("data", "metadata", "transient")} == {
        "data": {}, "metadata": {}, "transient": {}}


def test_outputs_are_rebuilt_from_validated_values():
    output, _ = clean_output("display_data", {
        "data": {"text/plain": ["a", "b"], "text/html": "<b>x</b>", "application/json": {"a": 1},
                 "image/png": "iVBORw0KGgo=", "application/javascript": "alert(1)"},
        "metadata": {"image/png": {"width": 300, "height": "1 onerror=alert(1)"},
                     "needs_background": "light", "width": 5, "filenames": {"image/png": "x"},
                     "text/plain": {"width": 3}, "m": [[]] * 1000},
        "transient": {"display_id": "d"}})
    assert output == {"output_type": "display_data", "metadata": {
        "image/png": {"width": 300}, "needs_background": "light"}, "data": {
        "text/plain": "ab", "text/html": "<b>x</b>", "image/png": "iVBORw0KGgo="}}
    assert clean_output("display_data", {"data": {"image/png": '" onerror="x'}})[0].data == {
        "text/plain": "[image/png output removed by the grader]"}
    assert clean_output("execute_result", {"data": {}}, "1; forged")[0].execution_count is None
    assert clean_output("stream", {"name": "stdout", "text": "x", "junk": [[]]})[0] == {
        "output_type": "stream", "name": "stdout", "text": "x"}
    for kind, fields in [("stream", {"name": "stdin", "text": "x"}),
                         ("stream", {"name": "stdout", "text": ["x", 1]}),
                         ("error", {"ename": "E", "evalue": "v", "traceback": "tb"}),
                         ("error", {"ename": 1, "evalue": "v", "traceback": []}),
                         ("surprise", {}), ("display_data", [])]:
        assert clean_output(kind, fields)[0] is None, (kind, fields)
    for width in (0, -3, float("nan"), float("inf"), True, "300"):
        assert "image/png" not in clean_output("display_data", {
            "data": {"image/png": "AAAA"}, "metadata": {"image/png": {"width": width}}})[0].metadata


def test_stored_image_metadata_cannot_put_script_into_an_img_tag():
    """nbconvert writes an image's width unquoted into its <img> tag: the formgrader would
    run this (notebooks graded before are cleaned again at feedback)."""
    nb = sanitized(new_code_cell("x", outputs=[new_output(
        "display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"},
        metadata={"image/png": {"width": "1 onerror=alert(1)", "height": 200},
                  "width": "2 onerror=alert(2)"})]))
    assert nb.cells[0].outputs[0].metadata == {"image/png": {"height": 200}}
    assert "onerror" not in formgrade_page(nb)


def test_stored_outputs_of_unknown_or_malformed_kinds_become_a_note():
    cell = new_code_cell("x")
    cell.outputs = [{"output_type": "stream", "name": "stdout", "text": "kept\n"},
                    {"output_type": "stream", "name": "stdin", "text": "x"},
                    {"output_type": "execute_result", "data": {"text/plain": "7"},
                     "metadata": {"m": [[]]}, "execution_count": 3}]
    cell.outputs = SanitizeSubmission().sanitize_code_outputs(cell.outputs, 0)
    assert cell.outputs == [
        {"output_type": "stream", "name": "stdout", "text": "kept\n"},
        {"output_type": "stream", "name": "stdout",
         "text": "[stream output removed by the grader]\n"},
        {"output_type": "execute_result", "data": {"text/plain": "7"}, "metadata": {},
         "execution_count": 3}]
    nbformat.validate(new_notebook(cells=[cell]))


# ---- the relay: no message buffered whole beyond the limit ----

GREETING = b"\xff" + bytes(8) + b"\x7f" + bytes([3, 1]) + b"NULL".ljust(20, b"\0") + bytes(32)


def zmtp(*frames, command=False):
    """ZMTP 3 frames of one message (or one command)."""
    out = b""
    for i, frame in enumerate(frames):
        flags = (0x01 if i < len(frames) - 1 else 0) | (0x04 if command else 0)
        if len(frame) > 255:
            out += bytes([flags | 0x02]) + len(frame).to_bytes(8, "big")
        else:
            out += bytes([flags, len(frame)])
        out += frame
    return out


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_frames_are_counted_per_message_across_any_chunking(chunk):
    before = GREETING + zmtp(b"\x05READY" + b"x" * 40, command=True) + \
        zmtp(b"a" * 600, b"b" * 300) + zmtp(b"c" * 999) + zmtp(b"d" * 600, b"")[:-2]
    stream = before + zmtp(b"e" * 500)  # 600 + 500 bytes: cut once the "e" frame's size is read
    limit = outputs.FrameLimit(1000 + 2 * outputs.FrameLimit.FRAME_COST)
    fed = [limit.feed(stream[i:i + chunk]) for i in range(0, len(stream), chunk)]
    assert fed.index(False) == (len(before) + 9 - 1) // chunk
    assert all(fed[:fed.index(False)])


def test_a_message_of_many_empty_frames_is_cut():
    """Each frame costs the grader ZeroMQ's and Python's objects: 8 MiB of empty frames
    would be four million of them."""
    assert outputs.FrameLimit(10_000_000).feed(GREETING + zmtp(*[b""] * 64))
    assert not outputs.FrameLimit(10_000_000).feed(GREETING + zmtp(*[b""] * 65))


def test_a_stream_that_is_not_zmtp_3_is_cut():
    assert not outputs.FrameLimit(1000).feed(b"\xff" + bytes(8) + b"\x7f" + bytes([2, 0]) +
                                             bytes(53))
    assert not outputs.FrameLimit(1000).feed(GREETING + zmtp(b"x" * 70_000, command=True))


def test_the_relay_cuts_a_message_too_large_in_all_its_frames_and_a_new_one_serves(tmp_path):
    """After a cut the channel stays silent, as ZeroMQ's MAXMSGSIZE leaves it; the grader's
    reconnect opens a new channel through a new relay."""
    import threading
    import time

    import zmq
    context = zmq.Context()
    publisher = context.socket(zmq.PUB)
    publisher.bind(f"ipc://{tmp_path}/kernel-iopub")

    def subscribed():
        relay = outputs.Relay(f"ipc://{tmp_path}/kernel-iopub", 1_000_000, str(tmp_path))
        subscriber = context.socket(zmq.SUB)
        subscriber.setsockopt(zmq.SUBSCRIBE, b"")
        subscriber.connect(relay.url)
        deadline = time.monotonic() + 10
        while not received_by(subscriber, [b"hello"]):
            assert time.monotonic() < deadline, "nothing came through the relay"
        return relay, subscriber

    def received_by(subscriber, *sending):
        for frames in sending:
            publisher.send_multipart(frames, copy=False)
        got = []
        while subscriber.poll(300):
            got.append(subscriber.recv_multipart())
        return got
    try:
        relay, subscriber = subscribed()
        big = b"z" * 400_000
        assert received_by(subscriber, [b"small", big, big]) == [[b"small", big, big]]
        assert received_by(subscriber, [b"before"], [b"many frames", *[big] * 5]) == [[b"before"]]
        time.sleep(0.5)
        assert received_by(subscriber, [b"after"]) == []
        subscriber.close(linger=0)
        new_relay, new_subscriber = subscribed()
        assert received_by(new_subscriber, [b"after"]) == [[b"after"]]
    finally:
        relay.close()
        new_relay.close()
        close_without_waiting(context, publisher, subscriber, new_subscriber)
    deadline = time.monotonic() + 5
    while any(t.name.startswith("relay ") for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the relay's threads outlive it"
        time.sleep(0.05)


def close_without_waiting(context, *sockets):
    """Close the sockets at once, then the test's context. Its term() hung now and then
    when two of these tests ran one after the other (not in the grader, whose client's
    context lives on): the test does not wait for it past 10 s."""
    import threading
    for end in sockets:
        end.close(linger=0)
    ending = threading.Thread(target=context.term, daemon=True, name="zmq term")
    ending.start()
    ending.join(10)


def test_replies_left_unread_do_not_stop_the_requests(tmp_path):
    """The judge never reads the replies to its test calls: once ZeroMQ's queue of them was
    full, a relay pumping both ways in one thread stopped forwarding the calls (06's honest
    students lost their points)."""
    import zmq
    context = zmq.Context()
    context.setsockopt(zmq.RCVHWM, 16)
    kernel = context.socket(zmq.ROUTER)
    kernel.bind(f"ipc://{tmp_path}/kernel-shell")
    relay = outputs.Relay(f"ipc://{tmp_path}/kernel-shell", 1_000_000, str(tmp_path))
    grader = context.socket(zmq.DEALER)
    grader.connect(relay.url)
    try:
        for call in range(300):
            grader.send(b"call %d" % call)
            assert kernel.poll(5000), f"call {call} never reached the kernel"
            identity, request = kernel.recv_multipart()
            kernel.send_multipart([identity, b"reply" + b"r" * 8000])
    finally:
        relay.close()
        close_without_waiting(context, grader, kernel)


# ---- GuardedExecute on messages made by hand ----

def message(msg_type, content, size=None, parent="cell"):
    msg = {"msg_type": msg_type, "header": {"msg_type": msg_type},
           "parent_header": {"msg_id": parent}, "metadata": {}, "content": content}
    if size is not None:
        msg["wire_bytes"] = size
    return msg


def executor(cells=2, **limits):
    executor = GuardedExecute(**limits)
    executor.nb = new_notebook(cells=[new_code_cell("pass", metadata={"execution": {}})
                                      for _ in range(cells)])  # as nbclient starts a cell
    executor.reset_execution_trackers()
    executor.clear_before_next_output = False
    executor._spent_bytes, executor._spent_messages, executor._noted = Counter(), Counter(), set()
    return executor


def process(executor, index, *messages):
    cell = executor.nb.cells[index]
    for msg in messages:
        executor.process_message(msg, cell, index)
    return cell


def texts(cell):
    return [o.get("text") or o.get("data", {}).get("text/plain") for o in cell.outputs]


def test_every_byte_of_a_message_counts_per_cell_and_per_notebook():
    ex = executor(max_output_bytes=1000, max_notebook_output_bytes=1500)
    display = {"data": {"text/plain": "x"}, "metadata": {}}
    # Structure the old count missed: the metadata of these messages made them 600 bytes.
    cell = process(ex, 0, message("display_data", display, 600),
                   message("display_data", display, 600), message("display_data", display, 400))
    assert texts(cell) == ["x", "\n... output truncated by the grader: over 1,000 bytes of "
                                "output in this cell or 1,500 in the notebook ...\n"]
    # What was dropped was received all the same: the notebook's budget is spent.
    later = process(ex, 1, message("display_data", display, 10))
    assert texts(later) == [texts(cell)[1]]


def test_the_number_of_messages_is_bounded_per_cell_and_per_notebook():
    ex = executor(cells=3, max_output_messages=3, max_notebook_output_messages=12)
    stream = message("stream", {"name": "stdout", "text": "."}, 50)
    note = "\n... output truncated by the grader: over 3 messages of output in this cell or " \
           "12 in the notebook ...\n"
    assert texts(process(ex, 0, *[stream] * 10)) == ["."] * 3 + [note]
    assert texts(process(ex, 1, *[stream] * 10)) == ["."] * 2 + [note]
    # The end of a cell is never dropped, however many messages came before it.
    from nbclient.exceptions import CellExecutionComplete
    with pytest.raises(CellExecutionComplete):
        process(ex, 2, message("status", {"execution_state": "idle"}, 50))


def test_a_display_update_counts_and_is_rebuilt():
    ex = executor(max_output_bytes=1000)
    shown = {"data": {"text/plain": "start"}, "metadata": {}, "transient": {"display_id": "d"}}
    update = {"data": {"text/plain": "new", "application/javascript": "x"},
              "metadata": {"m": [[]]}, "transient": {"display_id": "d"}}
    cell = process(ex, 0, message("display_data", shown, 100),
                   message("update_display_data", update, 100))
    assert (cell.outputs[0].data, cell.outputs[0].metadata) == ({"text/plain": "new"}, {})
    process(ex, 1, message("update_display_data", {**update, "data": {"text/plain": "late"}},
                           5000))  # over the budget of the cell it arrives in
    assert cell.outputs[0].data == {"text/plain": "new"}


def test_the_execution_count_is_the_graders():
    ex = executor()
    ex.code_cells_executed = 4
    cell = process(ex, 0, message("execute_input", {"code": "x", "execution_count": "forged"}),
                   message("execute_result", {"data": {"text/plain": "7"}, "metadata": {},
                                              "execution_count": {"forged": [1]}}))
    assert cell.execution_count == 4 and cell.outputs[0].execution_count == 4
    nbformat.validate(ex.nb)


def test_a_refused_message_is_one_note_in_its_cell():
    ex = executor()
    refused = outputs.refused({"msg_type": "display_data"}, {"msg_id": "cell"},
                              "a message nested over 64 levels deep", 10)
    cell = process(ex, 0, refused, refused,
                   message("stream", {"name": "stdin", "text": "x"}),
                   message("comm_open", {"data": {"state": "w" * 1000}}))
    assert texts(cell) == [
        "output refused by the grader: a message nested over 64 levels deep.\n",
        "output refused by the grader: a stream output without a known name and text.\n"]
    assert not ex.widget_state


def test_an_error_reply_adds_only_a_validated_error():
    ex = executor()
    cell = ex.nb.cells[0]
    ex.on_cell_executed(cell=cell, cell_index=0, execute_reply={"content": {
        "status": "error", "ename": {"x": 1}, "evalue": "v", "traceback": []}})
    ex.on_cell_executed(cell=cell, cell_index=0, execute_reply={"content": {
        "status": "error", "ename": "ValueError", "evalue": "v", "traceback": []}})
    assert [(o.ename, o.traceback[0][:20]) for o in cell.outputs] == [
        ("ExecutionError", "ExecutionError: The "), ("ValueError", "ERROR: An error occu")]
    nbformat.validate(ex.nb)


# ---- real kernels, in the sandbox, that flood the grader ----

needs_sandbox = pytest.mark.skipif(
    bwrap.unavailable_reason() is not None and not os.environ.get("CI"),
    reason=f"no sandbox here: {bwrap.unavailable_reason()}")


@pytest.fixture(scope="module")
def servers():
    yield
    stop_grading_servers()


FLOODS = ["metadata_lists", "deep_nesting", "huge_transient", "display_updates", "malformed",
          "multi_frame", "forged_execution_count_raw", "forged_execution_count"]


@needs_sandbox
def test_a_notebook_whose_kernel_floods_and_forges_gets_exactly_its_answers_points(
        servers, tmp_path):
    """The notes' answer of 01 (3 points), then one cell per attack of output_floods (the
    red team's metadata flood, a million lists deep, transient, display updates, malformed
    frames, forged execution counts in execute_input, execute_result and execute_reply).
    Before: the metadata flood made a 88 MB notebook, the others stopped its grading
    (RecursionError, ValueError, NotebookValidationError): no grade at all."""
    import output_floods
    nb = output_floods.one_cell_each(FLOODS)
    points, size = output_floods.grade(nb, tmp_path)
    assert points == output_floods.FULL_POINTS
    assert size < 150_000
    notes = {c.metadata.get("attack"): "".join(o.get("text", "") for o in c.outputs
                                               if o.get("name") == "stderr")
             for c in nb.cells if c.cell_type == "code"}
    too_many = "a message holding over 10,000 lists and objects"
    for attack, said in {"metadata_lists": "a message of 8,000,", "deep_nesting": too_many,
                         "huge_transient": "a message of 5,00", "display_updates": too_many,
                         "malformed": "a stream output without a known name"}.items():
        assert f"output refused by the grader: {said}" in notes[attack], (attack, notes[attack])
    (cut,) = [c for c in nb.cells if c.metadata.get("attack") == "multi_frame"]
    assert [o.get("ename") for o in cut.outputs] == ["OutputLost"]
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code"
              and c.execution_count is not None]
    assert counts == list(range(1, len(counts) + 1))
    assert all(o.execution_count in counts for c in nb.cells if c.cell_type == "code"
               for o in c.outputs if o.output_type == "execute_result")


@needs_sandbox
def test_a_flood_costs_the_grader_no_more_memory_than_an_honest_notebook():
    """Peak RSS of one grading process, honest notebook first, then the red team's flood
    (five displays with 2,000,000 empty lists of metadata each: before, 2.4 GB against
    0.66 GB, and an 88 MB notebook), then one message of forty 50 MB frames (before, the
    grader held all 2 GB of it)."""
    import output_floods
    honest, *floods = output_floods.measure("honest", "metadata_lists", "multi_frame")
    for flood in floods:
        assert flood["points"] == output_floods.FULL_POINTS, flood
        assert flood["peak_rss_mb"] - honest["peak_rss_mb"] < 100, (honest, flood)
        assert flood["notebook_bytes"] < 2 * honest["notebook_bytes"], flood
