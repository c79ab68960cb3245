use std::sync::Arc;

use baton_kit::{Invocation, Outcome, PendingApproval, Principal, Role, ToolContext};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestParams, CompleteResult,
    CompletionInfo, ContentBlock, GetPromptRequestParams, GetPromptResponse, Implementation,
    ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, Prompt, ReadResourceRequestParams, ReadResourceResponse, Reference,
    RequestStateCodec, Resource, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::Value;
use serde_json::json;
use tracing::Instrument as _;

use crate::convert::{descriptor_to_tool, error_to_mcp, output_to_result};
use crate::knowledge;
use crate::page::page;
use crate::progress::ProgressRelay;
use crate::{McpError, Served, approval, artifacts};
use baton_runs::{StoreApi as _, Withdrawal};

const INSTRUCTIONS: &str = "Baton: tool packs for audio DSP, product-image QA, Australian \
    medicinal-cannabis prescription rules and repository orchestration, behind one policy gate \
    with approvals and an audit log. Call `baton_info` to see the packs enabled here; \
    `knowledge_search` finds documentation, also readable as `knowledge://` resources.";

/// MCP request methods of both protocol eras that rmcp parses into typed requests: one of
/// these reaching `on_custom_request` had params that did not fit. (Methods the 2026-07-28
/// revision removed — `initialize`, `ping`, `logging/setLevel`, `resources/subscribe` — must
/// stay "method not found" there.)
const KNOWN_METHODS: &[&str] = &[
    "server/discover",
    "completion/complete",
    "prompts/get",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "tools/call",
    "tools/list",
];

/// What is wrong with `tools/call` params that did not parse, in words.
fn call_params_problem(params: Option<&Value>) -> String {
    let Some(params) = params else {
        return "`name` is missing (no params)".to_owned();
    };
    let kind = baton_kit::json_kind;
    match (params.get("name"), params.get("arguments")) {
        (None, _) => "`name` is missing".to_owned(),
        (Some(name), _) if !name.is_string() => {
            format!("`name` must be a string, not {}", kind(name))
        }
        (_, Some(arguments)) if !arguments.is_object() && !arguments.is_null() => {
            format!("`arguments` must be an object, not {}", kind(arguments))
        }
        _ => "they do not have the shape `tools/call` takes".to_owned(),
    }
}

/// Baton's MCP server handler: every request is answered from the kit registry (through the
/// gate) and the knowledge library.
#[derive(Clone)]
pub struct BatonMcp {
    served: Arc<Served>,
    tools: Arc<Vec<Tool>>,
    prompts: Arc<Vec<Prompt>>,
    /// Who a call is from when the transport does not say (stdio).
    default_principal: Option<Arc<Principal>>,
    /// Built once: rmcp asks for it on every stateless request.
    info: Arc<ServerConfig>,
    /// Seals approval state between an `InputRequiredResult` and the client's retry.
    request_state: Arc<RequestStateCodec>,
    /// Long calls run as MCP tasks.
    tasks: crate::tasks::Tasks,
}

impl std::fmt::Debug for BatonMcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatonMcp")
            .field("tools", &self.tools.len())
            .finish_non_exhaustive()
    }
}

impl BatonMcp {
    /// A handler over `served`. `default_principal` is the caller on transports that carry no
    /// identity (stdio); on HTTP the authentication layer supplies one per request.
    pub fn new(
        served: Arc<Served>,
        default_principal: Option<Arc<Principal>>,
    ) -> crate::Result<BatonMcp> {
        let tools: Vec<Tool> = served
            .gate
            .registry()
            .descriptors()
            .map(descriptor_to_tool)
            .collect();
        let prompts = knowledge::prompts();
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_prompts()
            .enable_completions()
            .enable_tasks()
            .build();
        let info = ServerConfig::new(capabilities)
            .with_server_info(
                Implementation::new("baton", env!("CARGO_PKG_VERSION")).with_title("Baton"),
            )
            .with_instructions(INSTRUCTIONS);
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)
            .map_err(|e| McpError::Sealing(format!("no OS randomness for the key: {e}")))?;
        let request_state = RequestStateCodec::try_new(key.to_vec())
            .map_err(|e| McpError::Sealing(e.to_string()))?;
        Ok(BatonMcp {
            tasks: crate::tasks::Tasks::new(served.gate.store().clone()),
            served,
            info: Arc::new(info),
            request_state: Arc::new(request_state),
            tools: Arc::new(tools),
            prompts: Arc::new(prompts),
            default_principal,
        })
    }

    /// What this handler serves.
    pub fn served(&self) -> &Arc<Served> {
        &self.served
    }

    /// Who sent the request: the authenticated HTTP caller, else the transport's principal.
    pub fn principal(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> Result<Arc<Principal>, ErrorData> {
        let from_http = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Arc<Principal>>());
        from_http
            .or(self.default_principal.as_ref())
            .cloned()
            .ok_or_else(|| ErrorData::internal_error("request carries no principal", None))
    }

    /// Whether this request's client may answer approval forms, and over which transport.
    fn client_channel(&self, context: &RequestContext<RoleServer>) -> (bool, &'static str) {
        let asking = self.served.settings.approvals.ask_client;
        match context.extensions.get::<http::request::Parts>() {
            Some(parts) => {
                let trusted = parts
                    .extensions
                    .get::<approval::ClientApproves>()
                    .is_some_and(|approves| approves.0);
                (asking && trusted, "http")
            }
            None => (
                asking && self.served.settings.stdio.approve_in_client,
                "stdio",
            ),
        }
    }

    /// Every resource offered now (knowledge documents), unpaged.
    pub fn resources(&self) -> Vec<Resource> {
        knowledge::resources(&self.served.knowledge.current())
    }

    /// Every prompt offered, unpaged.
    pub fn prompts(&self) -> &[Prompt] {
        &self.prompts
    }

    /// Items per page of the list methods (`[server] page_size`).
    pub fn page_size(&self) -> usize {
        self.served.settings.server.page_size
    }
}

impl BatonMcp {
    /// An outcome of the gate as MCP sends it.
    fn finish(
        &self,
        tool: &str,
        args: &Value,
        outcome: baton_kit::Result<Outcome>,
    ) -> Result<CallToolResponse, ErrorData> {
        match outcome {
            Ok(Outcome::Completed(output)) => Ok(output_to_result(output).into()),
            Ok(Outcome::PendingApproval(pending)) => Ok(self.pending(tool, args, &pending).into()),
            Err(error) => error_to_mcp(error).map(Into::into),
        }
    }

    /// The `pending_approval` result for `pending`, linking to the console when the server
    /// knows where people reach it.
    fn pending(&self, tool: &str, args: &Value, pending: &PendingApproval) -> CallToolResult {
        let console = self.served.settings.console_base();
        approval::pending_result(&pending.approval_id, &pending.reason, tool, args, console)
    }
}

impl BatonMcp {
    /// Run a registered tool through the gate, relaying progress.
    async fn invoke(
        &self,
        principal: Arc<Principal>,
        tool: &str,
        args: Value,
        approval_id: Option<String>,
        context: &RequestContext<RoleServer>,
    ) -> baton_kit::Result<Outcome> {
        let relay = ProgressRelay::start(context);
        let mut tool_context = ToolContext::new(context.ct.clone());
        if let Some(relay) = &relay {
            tool_context = tool_context.with_progress(relay.sink());
        }
        let outcome = self
            .served
            .gate
            .call(Invocation {
                principal,
                tool: tool.to_owned(),
                args,
                approval_id,
                context: tool_context,
            })
            .await;
        if let Some(relay) = relay {
            relay.finish().await;
        }
        outcome
    }

    /// The call needs approval: ask the client if it can answer, else report it pending.
    async fn ask(
        &self,
        principal: Arc<Principal>,
        tool: &str,
        args: Value,
        pending: PendingApproval,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let report = || Ok(self.pending(tool, &args, &pending).into());
        let message = approval::form_message(tool, &pending.reason, &args);
        let (trusted, _) = self.client_channel(context);
        match approval::channel(context, trusted) {
            approval::Channel::Report => report(),
            approval::Channel::Elicit => match approval::elicit(context, message).await? {
                None => report(),
                Some(answer) => {
                    self.apply(principal, tool, args, &pending.approval_id, answer, context)
                        .await
                }
            },
            approval::Channel::InputRequired => {
                let state = self
                    .request_state
                    .seal_json(&approval::Sealed {
                        approval_id: pending.approval_id.clone(),
                        tool: tool.to_owned(),
                        principal: principal.id.clone(),
                    })
                    .map_err(|e| {
                        ErrorData::internal_error(format!("sealing the approval: {e}"), None)
                    })?;
                Ok(approval::input_required(message, state)?.into())
            }
        }
    }

    /// A 2026-07-28 client retried with its answer to the approval form.
    async fn resume(
        &self,
        principal: Arc<Principal>,
        tool: &str,
        args: Value,
        state: &str,
        responses: Option<&rmcp::model::InputResponses>,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let sealed: approval::Sealed = self.request_state.open_json(state).map_err(|_| {
            ErrorData::invalid_params("requestState failed integrity verification (or the server restarted); call the tool again", None)
        })?;
        if sealed.tool != tool {
            return Err(ErrorData::invalid_params(
                format!("requestState belongs to `{}`, not `{tool}`", sealed.tool),
                None,
            ));
        }
        if sealed.principal != principal.id || !self.client_channel(context).0 {
            return Err(ErrorData::invalid_params(
                "requestState was not issued to this caller, or its client may not answer \
                 approval forms; a reviewer decides the approval",
                Some(json!({ "approval_id": sealed.approval_id })),
            ));
        }
        let Some(response) = responses
            .and_then(|r| r.get(approval::INPUT_KEY))
            .filter(|v| v.is_object())
        else {
            // No usable answer: ask again, as the protocol recommends.
            let message = approval::form_message(tool, "approval is still needed", &args);
            return Ok(approval::input_required(message, state.to_owned())?.into());
        };
        let action = response
            .get("action")
            .and_then(Value::as_str)
            .unwrap_or("missing");
        let answer = approval::read_answer(action, response.get("content"));
        self.apply(principal, tool, args, &sealed.approval_id, answer, context)
            .await
    }

    /// Record the client's answer — through the gate, as `approvals_decide` by the person at
    /// this client — then run the call if it was approved.
    async fn apply(
        &self,
        principal: Arc<Principal>,
        tool: &str,
        args: Value,
        approval_id: &str,
        answer: approval::Answer,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let (trusted, transport) = self.client_channel(context);
        if !trusted {
            return Err(ErrorData::invalid_params(
                "this client may not answer approval forms; a reviewer decides the approval",
                Some(json!({ "approval_id": approval_id })),
            ));
        }
        let person = Arc::new(Principal::new(
            format!("{}@client:{transport}", principal.id),
            [Role::Reviewer],
        ));
        let (verdict, note) = match &answer {
            approval::Answer::Approve(note) => ("approve", note.clone()),
            approval::Answer::Reject(note) => ("reject", Some(note.clone())),
            approval::Answer::Decline(note) => {
                let by = format!("{}@client:{transport}", principal.id);
                return self
                    .withdraw(approval_id, by, Withdrawal::Declined, note.clone())
                    .await;
            }
            approval::Answer::Cancel(why) => {
                let by = format!("{}@client:{transport}", principal.id);
                return self
                    .withdraw(approval_id, by, Withdrawal::Cancelled, Some(why.clone()))
                    .await;
            }
        };
        let decided = self
            .served
            .gate
            .call(Invocation {
                principal: person,
                tool: "approvals_decide".to_owned(),
                args: json!({ "id": approval_id, "decision": verdict, "note": note.clone() }),
                approval_id: None,
                context: ToolContext::new(context.ct.clone()),
            })
            .await;
        if let Err(error) = decided {
            return Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                "denied: the approval could not be recorded: {error}"
            ))])
            .into());
        }
        if let Some(note) = note.filter(|_| verdict == "reject") {
            return Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                "denied: approval {approval_id} was rejected: {note}"
            ))])
            .into());
        }
        let outcome = self
            .invoke(
                principal,
                tool,
                args.clone(),
                Some(approval_id.to_owned()),
                context,
            )
            .await;
        self.finish(tool, &args, outcome)
    }

    /// Run a long call as an MCP task: the client gets the task at once.
    async fn start_task(
        &self,
        principal: Arc<Principal>,
        name: String,
        args: Value,
        approval_id: Option<String>,
    ) -> Result<CallToolResponse, ErrorData> {
        if let Err(error) = self.served.gate.pace(&principal) {
            return error_to_mcp(error).map(Into::into);
        }
        let call = crate::tasks::gate_call(
            self.served.clone(),
            principal.clone(),
            name.clone(),
            args.clone(),
            approval_id,
        );
        let now = self.served.gate.clock().now_ms();
        let created = self
            .tasks
            .start(&principal.id, &name, &args, now, call)
            .await?;
        Ok(CallToolResponse::Task(created))
    }

    /// The client declined or dismissed the form, or went away: withdraw the approval (its
    /// call's closing audit record is written by the store) and say so.
    async fn withdraw(
        &self,
        approval_id: &str,
        by: String,
        how: Withdrawal,
        note: Option<String>,
    ) -> Result<CallToolResponse, ErrorData> {
        let now = self.served.gate.clock().now_ms();
        let withdrawn = self
            .served
            .gate
            .store()
            .withdraw_approval(approval_id.to_owned(), by, how, note.clone(), now)
            .await;
        let text = match (withdrawn, how) {
            (Err(error), _) => {
                format!("denied: approval {approval_id} could not be withdrawn: {error}")
            }
            (Ok(_), Withdrawal::Declined) => format!(
                "denied: approval {approval_id} was declined in the client{}",
                note.map(|n| format!(": {n}")).unwrap_or_default()
            ),
            (Ok(_), Withdrawal::Cancelled) => format!(
                "denied: approval {approval_id} was cancelled{}",
                note.map(|n| format!(": {n}")).unwrap_or_default()
            ),
        };
        Ok(CallToolResult::error(vec![ContentBlock::text(text)]).into())
    }
}

impl ServerHandler for BatonMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::clone(&self.info)
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.iter().find(|tool| tool.name == name).cloned()
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let (tools, next) = page(&self.tools, request.as_ref(), self.page_size())?;
        let mut result = ListToolsResult::with_all_items(tools);
        result.next_cursor = next;
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // Only a registered tool's name goes into the span: the name is the caller's to choose.
        let known = self.served.gate.registry().get(&request.name).is_some();
        // Whether this call's spans are made at all, decided before the first of them.
        let recorded = baton_gate::trace::decide(context.meta.get_traceparent());
        baton_gate::trace::scoped(recorded, async move {
            let tool = if known { &*request.name } else { "unknown" };
            let span = crate::trace::call_span(tool, &context.meta);
            let tool = Box::from(tool);
            baton_gate::trace::gate_on(&span, tool, self.call(request, context))
                .instrument(span)
                .await
        })
        .await
    }

    async fn get_task(
        &self,
        request: rmcp::model::GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::GetTaskResult, ErrorData> {
        let principal = self.principal(&context)?;
        self.tasks.get(&principal.id, &request.task_id).await
    }

    async fn cancel_task(
        &self,
        request: rmcp::model::CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let principal = self.principal(&context)?;
        self.tasks.cancel(&principal.id, &request.task_id).await
    }

    async fn on_custom_request(
        &self,
        request: rmcp::model::CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CustomResult, ErrorData> {
        // rmcp hands over a request of a method it knows when its params did not fit the
        // method's type: that is invalid params, not an unknown method.
        if KNOWN_METHODS.contains(&request.method.as_str()) {
            let problem = match request.method.as_str() {
                "tools/call" => call_params_problem(request.params.as_ref()),
                _ => "they do not have the shape the method takes".to_owned(),
            };
            return Err(ErrorData::invalid_params(
                format!("invalid params for `{}`: {problem}", request.method),
                Some(json!({ "method": request.method })),
            ));
        }
        Err(ErrorData::new(
            rmcp::model::ErrorCode::METHOD_NOT_FOUND,
            format!("method not found: `{}`", request.method),
            Some(json!({ "method": request.method })),
        ))
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        // Knowledge is listed as it is now: a table added or edited since start-up shows.
        let all = self.resources();
        let (resources, next) = page(&all, request.as_ref(), self.page_size())?;
        let mut result = ListResourcesResult::with_all_items(resources);
        result.next_cursor = next;
        Ok(result)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            artifacts::template(),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        if let Some(result) = knowledge::read(&self.served.knowledge.current(), &request.uri) {
            return Ok(result.into());
        }
        if let Some(result) = artifacts::read(self.served.gate.store(), &request.uri).await {
            return result.map(Into::into);
        }
        Err(ErrorData::resource_not_found(
            format!(
                "no resource `{}`; resources/list names the resources offered",
                request.uri
            ),
            Some(json!({ "uri": request.uri })),
        ))
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let (prompts, next) = page(&self.prompts, request.as_ref(), self.page_size())?;
        let mut result = ListPromptsResult::with_all_items(prompts);
        result.next_cursor = next;
        Ok(result)
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        if request.name == knowledge::BRIEF {
            return knowledge::brief(&self.served.knowledge.current(), request.arguments.as_ref())
                .map(Into::into);
        }
        Err(ErrorData::invalid_params(
            format!(
                "unknown prompt `{}`; prompts/list names the prompts offered",
                request.name
            ),
            Some(json!({ "prompt": request.name })),
        ))
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let prefix = request.argument.value.to_lowercase();
        let values: Vec<String> = match &request.r#ref {
            Reference::Prompt(prompt) if prompt.name == knowledge::BRIEF => {
                let library = self.served.knowledge.current();
                let documents = library.documents();
                let mut values: Vec<String> = match request.argument.name.as_str() {
                    "pack" => documents.iter().map(|d| d.pack.clone()).collect(),
                    "topic" => documents.iter().map(|d| d.title.clone()).collect(),
                    _ => Vec::new(),
                };
                values.retain(|value| value.to_lowercase().starts_with(&prefix));
                values.dedup();
                values
            }
            _ => Vec::new(),
        };
        let info = CompletionInfo::new(
            values
                .into_iter()
                .take(CompletionInfo::MAX_VALUES)
                .collect(),
        )
        .map_err(|error| ErrorData::internal_error(error, None))?;
        Ok(CompleteResult::new(info))
    }
}

impl BatonMcp {
    /// `tools/call`, inside its span.
    async fn call(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let principal = self.principal(&context)?;
        if self.served.gate.registry().get(&request.name).is_none() {
            return Err(ErrorData::invalid_params(
                format!(
                    "unknown tool `{}`; tools/list names the tools offered",
                    request.name
                ),
                Some(json!({ "kind": "not_found", "tool": request.name })),
            ));
        }
        let CallToolRequestParams {
            name,
            mut arguments,
            input_responses,
            request_state,
            ..
        } = request;
        let approval_id = approval::take_approval_id(&mut arguments, &context.meta);
        let args = arguments.map(Value::Object).unwrap_or(Value::Null);
        let long = self
            .served
            .gate
            .registry()
            .get(&name)
            .is_some_and(|tool| tool.descriptor().long);
        if long && request_state.is_none() && crate::tasks::Tasks::requested(&context) {
            return Box::pin(self.start_task(principal, name.to_string(), args, approval_id)).await;
        }
        if let Some(state) = request_state {
            return Box::pin(self.resume(
                principal,
                &name,
                args,
                &state,
                input_responses.as_ref(),
                &context,
            ))
            .await;
        }
        // Boxed: rmcp spawns one task per request holding the whole handler future, and an
        // inline gate future would make every request's task (and its copies) larger.
        let outcome = Box::pin(self.invoke(
            principal.clone(),
            &name,
            args.clone(),
            approval_id,
            &context,
        ))
        .await;
        match outcome {
            Ok(Outcome::PendingApproval(pending)) => {
                Box::pin(self.ask(principal, &name, args, pending, &context)).await
            }
            other => self.finish(&name, &args, other),
        }
    }
}
