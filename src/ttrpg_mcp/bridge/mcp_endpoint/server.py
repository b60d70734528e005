"""The MCP server an agent meets at ``/mcp``: the content server's offer, at one table, by role.

A low-level :class:`mcp.server.lowlevel.Server` whose handlers do no work of their own: each
MCP request becomes the protocol message a WebSocket client would send (``tool_discover``,
``tool_call``, ``resource_get``, ``prompt_get``) and goes through the dispatcher in the agent's
:class:`~ttrpg_mcp.bridge.mcp_endpoint.agents.AgentConnection`, so the pool's children answer
it with the agent's role in ``_meta``. Lists come from the pool's catalog, tools filtered by
the tool policy of the agent's role.

A player's tool policy leaves ``update_character`` out (it edits any sheet), yet the table lets a
player edit their own character (the ``character_update`` message): a player's agent is offered
the tool and its calls go as that message, with the table's ownership check.

Failures: a refused or failed tool call is a tool result with ``isError`` and the bridge's
``code: message`` as its text (what a model reads and can act on); any other refusal is a
JSON-RPC error whose ``data`` holds the bridge's ``{code, message, data}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError

from ttrpg_mcp import __version__
from ttrpg_mcp.bridge.errors import BridgeError
from ttrpg_mcp.bridge.permissions import Action, allowed

if TYPE_CHECKING:
    from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

    from ttrpg_mcp.bridge.mcp_endpoint.agents import AgentConnection
    from ttrpg_mcp.bridge.runtime import Bridge

__all__ = ["build_server", "jsonrpc_error"]

# Bridge error codes that mean "the request was wrong", not "the server failed".
_CLIENT_MISTAKES = frozenset(
    {"invalid_params", "invalid_message", "not_found", "unknown_tool", "value_too_long", "dangerous_key"}
)
_FORBIDDEN = -32003  # in JSON-RPC's range for implementation-defined server errors
# Tools a role's policy may leave out whose effect the table offers as a message of its own.
_OWN_CHARACTER_TOOL = "update_character"
_INSTRUCTIONS = (
    "You are at a shared tabletop-RPG table with people, as a participant of your own. Everything "
    "you change (dice, characters, notes, combat) is shown to the table live; give every roll a "
    "purpose. You act in one campaign, with the role your credential allows."
)


def jsonrpc_error(error: BridgeError) -> MCPError:
    """A bridge refusal as the JSON-RPC error an MCP client raises."""
    if error.code in _CLIENT_MISTAKES:
        code = types.INVALID_PARAMS
    elif error.http_status in (401, 403):
        code = _FORBIDDEN
    else:
        code = types.INTERNAL_ERROR
    return MCPError(code, f"{error.code}: {error.message}", error.to_dict())


def _result(reply: dict[str, Any]) -> dict[str, Any]:
    """The ``result`` of a dispatcher reply, or its error raised as a :class:`BridgeError`."""
    error = reply.get("error")
    if isinstance(error, dict):
        raise BridgeError(
            str(error.get("code", "internal_error")), str(error.get("message", "")), error.get("data")
        )
    result = reply.get("result")
    if not isinstance(result, dict):
        raise BridgeError("internal_error", "the bridge gave no result for this request")
    return result


class McpEndpoint(Protocol):
    """What the handlers need of the endpoint that serves them (it lives above this module)."""

    bridge: Bridge

    async def seat(self, ctx: ServerRequestContext[Any, Any]) -> AgentConnection: ...

    def agent_of(self, ctx: ServerRequestContext[Any, Any]) -> AgentConnection: ...


def build_server(endpoint: McpEndpoint) -> Server[Any]:
    """The server behind ``/mcp``; ``endpoint`` seats each session's agent and finds it again."""

    def agent_of(ctx: ServerRequestContext[Any, Any]) -> AgentConnection:
        try:
            return endpoint.agent_of(ctx)
        except BridgeError as error:
            raise jsonrpc_error(error) from None

    async def ask(
        agent: AgentConnection, ctx: ServerRequestContext[Any, Any], **message: Any
    ) -> dict[str, Any]:
        # A JSON-RPC id is unique within its MCP session: with the session, it identifies a
        # request across a resend (a change resent is answered once, never applied twice).
        message_id = f"mcp-{agent.mcp_session_id[:16]}-{ctx.request_id}"
        try:
            return _result(await agent.handle({"id": message_id[:128], **message}))
        except BridgeError as error:
            raise jsonrpc_error(error) from None

    async def catalog(ctx: ServerRequestContext[Any, Any]) -> tuple[AgentConnection, dict[str, Any]]:
        agent = agent_of(ctx)
        return agent, await ask(agent, ctx, type="tool_discover")

    def as_table_message(agent: AgentConnection, name: str) -> bool:
        """Whether a call of ``name`` goes as the table's own message rather than a tool call."""
        if name != _OWN_CHARACTER_TOOL or endpoint.bridge.dispatcher.tool_offered(agent.session, name):
            return False
        role = agent.role
        return role is not None and allowed(role, Action.EDIT_OWN_CHARACTER)  # type: ignore[arg-type]

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        agent, offer = await catalog(ctx)
        dispatcher = endpoint.bridge.dispatcher
        tools = [
            types.Tool.model_validate(tool)
            for tool in offer.get("tools", [])
            if dispatcher.tool_offered(agent.session, str(tool.get("name")))
            or as_table_message(agent, str(tool.get("name")))
        ]
        return types.ListToolsResult(tools=tools)

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        agent = agent_of(ctx)
        message_id = f"mcp-{agent.mcp_session_id[:16]}-{ctx.request_id}"
        arguments = dict(params.arguments or {})
        message: dict[str, Any] = {
            "type": "tool_call",
            "id": message_id[:128],
            "method": params.name,
            "params": arguments,
        }
        if as_table_message(agent, params.name):
            message = {"type": "character_update", "id": message_id[:128], "data": arguments}
        try:
            reply = await agent.handle(message)
            return types.CallToolResult.model_validate(_result(reply))
        except BridgeError as error:
            # The model reads this and can correct itself (another tool, other arguments).
            text = f"{error.code}: {error.message}"
            return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)

    async def list_resources(
        ctx: ServerRequestContext[Any, Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        _agent, offer = await catalog(ctx)
        return types.ListResourcesResult(
            resources=[types.Resource.model_validate(item) for item in offer.get("resources", [])]
        )

    async def list_resource_templates(
        ctx: ServerRequestContext[Any, Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        _agent, offer = await catalog(ctx)
        templates = [
            types.ResourceTemplate.model_validate(item) for item in offer.get("resource_templates", [])
        ]
        return types.ListResourceTemplatesResult(resource_templates=templates)

    async def read_resource(
        ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        agent = agent_of(ctx)
        result = await ask(agent, ctx, type="resource_get", params={"uri": str(params.uri)})
        return types.ReadResourceResult.model_validate(result)

    async def list_prompts(
        ctx: ServerRequestContext[Any, Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        _agent, offer = await catalog(ctx)
        return types.ListPromptsResult(
            prompts=[types.Prompt.model_validate(item) for item in offer.get("prompts", [])]
        )

    async def get_prompt(
        ctx: ServerRequestContext[Any, Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        agent = agent_of(ctx)
        arguments = {key: str(value) for key, value in (params.arguments or {}).items()}
        result = await ask(agent, ctx, type="prompt_get", method=params.name, params=arguments)
        return types.GetPromptResult.model_validate(result)

    server: Server[Any] = Server(
        "ttrpg-bridge",
        version=__version__,
        title="Tabletop RPG table",
        instructions=_INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_resource_templates,
        on_read_resource=read_resource,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
    )
    server.middleware.append(_SeatAgent(endpoint))
    return server


class _SeatAgent:
    """Seats the agent of a session when its ``initialize`` arrives (a refusal vetoes the handshake)."""

    def __init__(self, endpoint: McpEndpoint) -> None:
        self._endpoint = endpoint

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method == "initialize":
            try:
                await self._endpoint.seat(ctx)
            except BridgeError as error:
                raise jsonrpc_error(error) from None
        return await call_next(ctx)
