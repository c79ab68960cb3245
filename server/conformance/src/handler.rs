use std::sync::Arc;

use baton_mcp::{BatonMcp, page};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CompleteRequestParams, CompleteResult, CustomRequest,
    CustomResult, GetPromptRequestParams, GetPromptResponse, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    Prompt, ReadResourceRequestParams, ReadResourceResponse, ServerConfig, SetLevelRequestParams,
    SubscribeRequestParams, SubscriptionFilter, Tool, UnsubscribeRequestParams,
};
use rmcp::service::{RequestContext, SubscriptionContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};

use crate::Conformance;

/// Baton's handler with the conformance fixtures in front: fixture tools, prompts, resources
/// and protocol features are answered here, everything else by [`BatonMcp`].
#[derive(Debug, Clone)]
pub struct ConformanceMcp {
    inner: BatonMcp,
    fixtures: Arc<Conformance>,
    info: Arc<ServerConfig>,
    /// Fixture tools first, then Baton's.
    tools: Arc<Vec<Tool>>,
}

impl ConformanceMcp {
    /// `inner` with `fixtures` in front.
    pub fn new(inner: BatonMcp, fixtures: Arc<Conformance>) -> ConformanceMcp {
        let mut tools = fixtures.tools().to_vec();
        let baton_tools = inner
            .served()
            .gate
            .registry()
            .descriptors()
            .map(baton_mcp::descriptor_to_tool);
        tools.extend(baton_tools);
        let mut info = inner.get_info();
        info.capabilities = fixtures.capabilities();
        ConformanceMcp {
            inner,
            fixtures,
            info: Arc::new(info),
            tools: Arc::new(tools),
        }
    }

    /// Every item of an inner list (asked for whole), after `first`, paged as Baton pages.
    fn paged<T: Clone>(
        &self,
        mut first: Vec<T>,
        rest: Vec<T>,
        request: Option<&PaginatedRequestParams>,
    ) -> Result<(Vec<T>, Option<String>), ErrorData> {
        first.extend(rest);
        page(&first, request, self.inner.page_size())
    }
}

impl ServerHandler for ConformanceMcp {
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
        let (tools, next) = page(&self.tools, request.as_ref(), self.inner.page_size())?;
        let mut result = ListToolsResult::with_all_items(tools);
        result.next_cursor = next;
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if !self.fixtures.has_tool(&request.name) {
            return self.inner.call_tool(request, context).await;
        }
        let principal = self.inner.principal(&context)?;
        let gate = &self.inner.served().gate;
        Box::pin(self.fixtures.call(gate, &principal, request, context)).await
    }

    async fn on_custom_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        self.inner.on_custom_request(request, context).await
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let baton = self.inner.resources();
        let (resources, next) = self.paged(self.fixtures.resources(), baton, request.as_ref())?;
        let mut result = ListResourcesResult::with_all_items(resources);
        result.next_cursor = next;
        Ok(result)
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let mut templates = self
            .inner
            .list_resource_templates(request, context)
            .await?
            .resource_templates;
        templates.extend(self.fixtures.resource_templates());
        Ok(ListResourceTemplatesResult::with_all_items(templates))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        match self.fixtures.read(&request.uri) {
            Some(result) => Ok(result.into()),
            None => self.inner.read_resource(request, context).await,
        }
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let baton: Vec<Prompt> = self.inner.prompts().to_vec();
        let (prompts, next) = self.paged(self.fixtures.prompts(), baton, request.as_ref())?;
        let mut result = ListPromptsResult::with_all_items(prompts);
        result.next_cursor = next;
        Ok(result)
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        match self.fixtures.get_prompt(&request) {
            Some(response) => response,
            None => self.inner.get_prompt(request, context).await,
        }
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        match self.fixtures.complete(&request) {
            Some(result) => result,
            None => self.inner.complete(request, context).await,
        }
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.fixtures.set_level(request.level);
        Ok(())
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.fixtures.subscribe(request.uri, true)
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.fixtures.subscribe(request.uri, false)
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(self.fixtures.accept(requested))
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        Box::pin(self.fixtures.listen(context)).await
    }
}
