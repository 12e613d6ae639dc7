//! `gdx-hub demo`: a small province on this machine.
pub async fn run(shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    shutdown.await;
    Ok(())
}
