//! The tools every Baton serves beside the packs: `baton_info` and `knowledge_search` (the
//! approval tools belong to the gate).

mod info;
mod knowledge;

pub use info::{Info, InfoTool, PackSummary, PolicyInfo, Status};
pub use knowledge::{KnowledgeSearch, SearchArgs, SearchHit, SearchResult};
