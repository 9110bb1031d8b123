//! STUB
pub struct OpenAi;
impl OpenAi { pub fn new(_h: reqwest::Client, _u: url::Url, _m: String, _k: Option<crate::config::Secret>) -> Self { unimplemented!() } }
#[async_trait::async_trait]
impl super::ChatModel for OpenAi {
    fn kind(&self) -> &'static str { unimplemented!() }
    fn model(&self) -> &str { unimplemented!() }
    async fn chat(&self, _r: &super::ChatRequest, _s: Option<&super::TokenSink>) -> Result<super::ChatResponse, super::ProviderError> { unimplemented!() }
    async fn health(&self) -> Result<(), super::ProviderError> { unimplemented!() }
}
