//! STUB
pub struct Scripted;
impl Scripted { pub fn new() -> Self { unimplemented!() } }
#[async_trait::async_trait]
impl super::ChatModel for Scripted {
    fn kind(&self) -> &'static str { unimplemented!() }
    fn model(&self) -> &str { unimplemented!() }
    async fn chat(&self, _r: &super::ChatRequest, _s: Option<&super::TokenSink>) -> Result<super::ChatResponse, super::ProviderError> { unimplemented!() }
    async fn health(&self) -> Result<(), super::ProviderError> { unimplemented!() }
}
