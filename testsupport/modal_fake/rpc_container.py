"""Container-side RPCs: what `modal._container_entrypoint` calls from inside a fake container.

The container identifies itself with the `x-fake-task-id` header (set through the client's
`MODAL_OVERRIDE_HEADERS` setting). It gets exactly one input, marked `final_input` so the
entrypoint exits after it; its `FunctionPutOutputs` completes the call the client is polling.
"""

from __future__ import annotations

import asyncio

from google.protobuf import empty_pb2
from modal_proto import api_pb2


class ContainerRpcs:
    """Handlers for the fake container's own client."""

    def _run_for(self, stream):
        task_id = dict(stream.metadata or {}).get("x-fake-task-id", "")
        return self.containers.runs.get(task_id)

    async def ContainerHello(self, stream) -> None:
        await stream.recv_message()
        await stream.send_message(empty_pb2.Empty())

    async def ContainerHeartbeat(self, stream) -> None:
        await stream.recv_message()
        await stream.send_message(api_pb2.ContainerHeartbeatResponse())

    async def ContainerLog(self, stream) -> None:
        await stream.recv_message()
        await stream.send_message(empty_pb2.Empty())

    async def ContainerStop(self, stream) -> None:
        await stream.recv_message()
        await stream.send_message(api_pb2.ContainerStopResponse())

    async def FunctionGetDynamicConcurrency(self, stream) -> None:
        await stream.recv_message()
        await stream.send_message(api_pb2.FunctionGetDynamicConcurrencyResponse(concurrency=1))

    async def FunctionGetInputs(self, stream) -> None:
        await stream.recv_message()
        run = self._run_for(stream)
        if run is None or run.call.delivered:
            item = api_pb2.FunctionGetInputsItem(kill_switch=True)
        else:
            call = run.call
            call.delivered = True
            function_input = api_pb2.FunctionInput()
            function_input.CopyFrom(call.item.input)
            function_input.final_input = True
            item = api_pb2.FunctionGetInputsItem(
                input_id=call.input_id, input=function_input, function_call_id=call.call_id,
                function_call_invocation_type=api_pb2.FUNCTION_CALL_INVOCATION_TYPE_SYNC,
                attempt_token=f"at-{call.input_id}",
            )
        await stream.send_message(api_pb2.FunctionGetInputsResponse(inputs=[item]))

    async def FunctionPutOutputs(self, stream) -> None:
        request: api_pb2.FunctionPutOutputsRequest = await stream.recv_message()
        run = self._run_for(stream)
        for output in request.outputs:
            call = self.state.calls.get(output.input_id)
            if call is None or not self.state.finish(call, api_pb2.FunctionGetOutputsItem(
                result=output.result, input_id=output.input_id, data_format=output.data_format,
                task_id=run.task_id if run else "", input_started_at=output.input_started_at,
                output_created_at=output.output_created_at,
            )):
                continue
            if run is not None:
                asyncio.get_running_loop().create_task(self.containers.finish_soon(run))
        await stream.send_message(empty_pb2.Empty())

    async def TaskResult(self, stream) -> None:
        request: api_pb2.TaskResultRequest = await stream.recv_message()
        run = self._run_for(stream)
        if run is not None:
            run.task_result = request.result
        await stream.send_message(empty_pb2.Empty())

    async def FunctionCallPutDataOut(self, stream) -> None:
        await stream.recv_message()
        await stream.send_message(empty_pb2.Empty())
