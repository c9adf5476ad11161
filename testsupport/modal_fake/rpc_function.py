"""Client-side function RPCs: precreate/create (recorded), map/put-inputs (start a container per
input; a function call holds one input for `.remote()`, many for `.map()`), get-outputs (long-poll
for the outputs not yet returned, in the order they finished), cancel, and blobs.
"""

from __future__ import annotations

import asyncio

from google.protobuf import empty_pb2
from modal_proto import api_pb2

from .state import Call


def function_from_data(data: api_pb2.FunctionData) -> api_pb2.Function:
    """A `Function` equivalent of a `FunctionData` (the form the client uses for GPU fallbacks)."""
    function = api_pb2.Function()
    target_fields = api_pb2.Function.DESCRIPTOR.fields_by_name
    for field, value in data.ListFields():
        target = target_fields.get(field.name)
        if target is None or target.type != field.type or target.is_repeated != field.is_repeated:
            continue
        if field.message_type is not None and (target.message_type is None
                                               or target.message_type.full_name != field.message_type.full_name):
            continue
        if field.is_repeated:
            is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
            if is_map:
                getattr(function, field.name).MergeFrom(value)
            else:
                getattr(function, field.name).extend(value)
        elif field.message_type is not None:
            getattr(function, field.name).CopyFrom(value)
        else:
            setattr(function, field.name, value)
    if data.ranked_functions:
        function.MergeFrom(sorted(data.ranked_functions, key=lambda r: r.rank)[0].function)
    return function


def _handle_metadata(function: api_pb2.Function, function_id: str) -> api_pb2.FunctionHandleMetadata:
    return api_pb2.FunctionHandleMetadata(
        function_name=function.function_name,
        function_type=function.function_type,
        definition_id=f"de-{function_id}",
        is_method=function.is_method,
        supported_input_formats=list(function.supported_input_formats) or [api_pb2.DATA_FORMAT_PICKLE],
        supported_output_formats=list(function.supported_output_formats) or [api_pb2.DATA_FORMAT_PICKLE],
    )


class FunctionRpcs:
    """Handlers the client calls to define and call functions."""

    async def FunctionPrecreate(self, stream) -> None:
        request: api_pb2.FunctionPrecreateRequest = await stream.recv_message()
        function_id = request.existing_function_id or self.state.new_id("fu")
        metadata = api_pb2.FunctionHandleMetadata(
            function_name=request.function_name,
            function_type=request.function_type,
            definition_id=f"de-{function_id}",
            supported_input_formats=list(request.supported_input_formats) or [api_pb2.DATA_FORMAT_PICKLE],
            supported_output_formats=list(request.supported_output_formats) or [api_pb2.DATA_FORMAT_PICKLE],
        )
        self.state.function_app[function_id] = request.app_id
        await stream.send_message(api_pb2.FunctionPrecreateResponse(function_id=function_id, handle_metadata=metadata))

    async def FunctionCreate(self, stream) -> None:
        request: api_pb2.FunctionCreateRequest = await stream.recv_message()
        function_id = request.existing_function_id or self.state.new_id("fu")
        if request.HasField("function_data"):
            function = function_from_data(request.function_data)
            function_data = request.function_data
        else:
            function = request.function
            function_data = api_pb2.FunctionData(
                module_name=function.module_name, function_name=function.function_name,
                function_type=function.function_type, timeout_secs=function.timeout_secs,
                ranked_functions=[api_pb2.FunctionData.RankedFunction(rank=0, function=function)],
                supported_input_formats=function.supported_input_formats,
                supported_output_formats=function.supported_output_formats,
            )
        metadata = _handle_metadata(function, function_id)
        with self.state.lock:
            self.state.function_creates.append(request)
            self.state.functions[function_id] = function
            self.state.function_app[function_id] = request.app_id
            self.state.handle_metadata[function_id] = metadata
        await stream.send_message(api_pb2.FunctionCreateResponse(
            function_id=function_id, function=function, handle_metadata=metadata, function_data=function_data))

    async def _start_call(self, function_id: str, call_id: str, item: api_pb2.FunctionPutInputsItem) -> Call:
        call = Call(call_id=call_id, function_id=function_id, input_id=self.state.new_id("in"),
                    item=item, done=asyncio.Event())
        self.state.add_call(call)
        app_id = self.state.function_app.get(function_id, "")
        if app_id in self.state.stopped_apps:  # as on Modal: a stopped app takes no more inputs
            self.state.finish(call, api_pb2.FunctionGetOutputsItem(
                input_id=call.input_id, result=api_pb2.GenericResult(
                    status=api_pb2.GenericResult.GENERIC_STATUS_TERMINATED, exception="the app was stopped")))
            return call
        try:
            await self.containers.launch(call, app_id)
        except Exception as exc:  # surface launcher problems as a failed call, not a hang
            self.state.finish(call, api_pb2.FunctionGetOutputsItem(
                input_id=call.input_id, result=api_pb2.GenericResult(
                    status=api_pb2.GenericResult.GENERIC_STATUS_INTERNAL_FAILURE,
                    exception=f"modal-fake could not start a container: {exc!r}")))
        return call

    async def FunctionMap(self, stream) -> None:
        request: api_pb2.FunctionMapRequest = await stream.recv_message()
        call_id = self.state.new_id("fc")
        items = []
        for item in request.pipelined_inputs:
            call = await self._start_call(request.function_id, call_id, item)
            items.append(api_pb2.FunctionPutInputsResponseItem(idx=item.idx, input_id=call.input_id,
                                                               input_jwt=f"jwt-{call.input_id}"))
        await stream.send_message(api_pb2.FunctionMapResponse(
            function_call_id=call_id, pipelined_inputs=items, function_call_jwt=f"jwt-{call_id}",
            retry_policy=api_pb2.FunctionRetryPolicy(retries=0)))

    async def FunctionPutInputs(self, stream) -> None:
        request: api_pb2.FunctionPutInputsRequest = await stream.recv_message()
        items = []
        for item in request.inputs:
            call = await self._start_call(request.function_id, request.function_call_id, item)
            items.append(api_pb2.FunctionPutInputsResponseItem(idx=item.idx, input_id=call.input_id,
                                                               input_jwt=f"jwt-{call.input_id}"))
        await stream.send_message(api_pb2.FunctionPutInputsResponse(inputs=items))

    async def FunctionGetOutputs(self, stream) -> None:
        """The call's outputs after ``last_entry_id`` ("<n>-0"), long-polling up to ``timeout`` for one."""
        request: api_pb2.FunctionGetOutputsRequest = await stream.recv_message()
        try:
            after = int((request.last_entry_id or "0-0").split("-")[0])
        except ValueError:
            after = 0
        deadline = asyncio.get_running_loop().time() + max(0.0, min(request.timeout, 50.0))
        while True:  # inputs may still be arriving (FunctionPutInputs): look again each time
            calls = self.state.inputs_of(request.function_call_id)
            ready = sorted((c for c in calls if c.done.is_set() and c.entry > after), key=lambda c: c.entry)
            if ready or asyncio.get_running_loop().time() >= deadline:
                break
            await asyncio.sleep(0.05)
        unfinished = sum(not c.done.is_set() for c in calls)
        last = f"{ready[-1].entry}-0" if ready else (request.last_entry_id or "0-0")
        await stream.send_message(api_pb2.FunctionGetOutputsResponse(
            outputs=[c.output for c in ready], idxs=[c.item.idx for c in ready],
            num_unfinished_inputs=unfinished, last_entry_id=last))

    async def FunctionCallCancel(self, stream) -> None:
        request: api_pb2.FunctionCallCancelRequest = await stream.recv_message()
        await self.containers.cancel_call(request.function_call_id)
        await stream.send_message(empty_pb2.Empty())

    async def BlobCreate(self, stream) -> None:
        await stream.recv_message()
        blob_id = self.state.new_id("bl")
        await stream.send_message(api_pb2.BlobCreateResponse(
            blob_ids=[blob_id], upload_urls=api_pb2.UploadUrlList(items=[self.blobs.upload_url(blob_id)])))

    async def BlobGet(self, stream) -> None:
        request: api_pb2.BlobGetRequest = await stream.recv_message()
        await stream.send_message(api_pb2.BlobGetResponse(download_url=self.blobs.download_url(request.blob_id)))
