"""The grader's kernel clients: ready as soon as a kernel is, and bounded in what they read.

nbgrader_config.py selects ``BoundedKernelClient`` (``c.AsyncKernelManager.client_class``;
``convgrader.grading`` names it too, for configurations written before this module).
"""
import asyncio
import shutil
import tempfile
from typing import Any

import zmq
from jupyter_client.asynchronous import AsyncKernelClient

from convgrader import outputs

STOCK_CLIENT = "jupyter_client.asynchronous.AsyncKernelClient"  # nbclient's, for comparisons


class PromptKernelClient(AsyncKernelClient):
    """jupyter_client's asynchronous client, ready as soon as the kernel shows it is.

    The stock ``wait_for_ready`` ends by waiting for 0.2 s of silence on IOPub: a fifth of
    a warm notebook's grading. ipykernel (7 and later) greets each IOPub subscription with an
    ``iopub_welcome`` message; after it, nothing the kernel publishes can be missed, so the
    wait ends with the kernel_info reply and the "idle" status of that request. A kernel
    that sends no greeting gets the stock wait after ``greeting_timeout`` seconds.
    """

    greeting_timeout = 10.0

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        try:
            await asyncio.wait_for(self._greeted_and_answered(), self.greeting_timeout)
        except asyncio.TimeoutError:
            await super().wait_for_ready(timeout)

    async def _greeted_and_answered(self) -> None:
        while (await self.iopub_channel.get_msg())["msg_type"] != "iopub_welcome":
            pass
        msg_id = self.kernel_info()
        reply = await self._async_recv_reply(msg_id)
        self._handle_kernel_info_reply(reply)
        while True:
            msg = await self.iopub_channel.get_msg()
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status" \
                    and msg["content"]["execution_state"] == "idle":
                return


class BoundedKernelClient(PromptKernelClient):
    """The grading kernels' client. A message larger than ``MAX_RELAYED_MESSAGE_BYTES`` in
    all its frames never reaches the grader's memory: the relay it comes through cuts the
    connection (``outputs.Relay``; ZeroMQ's own ``MAXMSGSIZE`` limits each frame only), and
    that channel stays silent: ``GuardedExecute.reconnect`` opens a new one, and the cell or
    check whose output was lost fails; nobody else is affected. ZeroMQ queues at most
    ``QUEUED_MESSAGES`` for the grader. Smaller messages go through
    ``outputs.BoundedSession``, which refuses one over its limits (size, lists and objects,
    nesting) before parsing it, and never raises on what a kernel sends."""

    MAX_MESSAGE_BYTES = 64 * 2 ** 20
    # One message in all its frames (the relay cuts the connection past it), and how many
    # ZeroMQ may queue for the grader: together, the most a kernel can make it hold.
    MAX_RELAYED_MESSAGE_BYTES = 8 * 2 ** 20
    QUEUED_MESSAGES = 16

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.context.setsockopt(zmq.MAXMSGSIZE, self.MAX_MESSAGE_BYTES)
        self.context.setsockopt(zmq.RCVHWM, self.QUEUED_MESSAGES)
        self._relays: dict[str, outputs.Relay] = {}
        self._relay_folder: str | None = None
        # The kernel manager hands its own Session to its clients: this one checks and signs
        # with the same key, and bounds what it reads.
        if not isinstance(self.session, outputs.BoundedSession):
            self.session = outputs.BoundedSession.like(self.session, parent=self)

    def _make_url(self, channel: str) -> str:
        """The address of a new relay to the kernel's ``channel`` (``outputs.Relay``), for a
        new channel: ZeroMQ buffers a message whole before anyone sees it, and limits only
        each frame's size."""
        if self._relay_folder is None:
            self._relay_folder = tempfile.mkdtemp(prefix="convgrader-relays-")
        if channel in self._relays:  # the channel it served has been replaced
            self._relays[channel].close()
        self._relays[channel] = outputs.Relay(super()._make_url(channel),
                                              self.MAX_RELAYED_MESSAGE_BYTES, self._relay_folder)
        return self._relays[channel].url

    def stop_channels(self) -> None:
        super().stop_channels()
        for relay in self._relays.values():
            relay.close()
        self._relays = {}
        if self._relay_folder:
            shutil.rmtree(self._relay_folder, ignore_errors=True)
            self._relay_folder = None
