//! The pack every Baton serves: `baton_info` and `knowledge_search`.

mod info;
mod knowledge;

pub use info::{Info, InfoTool, PackSummary, Status};
pub use knowledge::{KnowledgeSearch, SearchArgs, SearchHit, SearchResult};
