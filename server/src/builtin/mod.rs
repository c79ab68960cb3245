//! The packs every Baton serves: `baton_info`, `knowledge_search`, and the approval tools.

mod approvals;
mod info;
mod knowledge;

pub use approvals::{ApprovalView, ApprovalsDecide, ApprovalsList, DecideArgs, ListArgs, Verdict};
pub use info::{Info, InfoTool, PackSummary, PolicyInfo, Status};
pub use knowledge::{KnowledgeSearch, SearchArgs, SearchHit, SearchResult};
