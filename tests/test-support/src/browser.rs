//! A real headless Chromium (Debian's `chromium`), driven over WebDriver by Debian's
//! `chromedriver` through `fantoccini`: for what a person sees in a browser.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;

use crate::needs;

/// A chromedriver process and a browser session on it; both end when dropped (the session
/// with [`Browser::close`] first, when the test can wait for it).
pub struct Browser {
    /// The WebDriver client.
    pub client: Client,
    driver: Child,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser").finish_non_exhaustive()
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

impl Browser {
    /// A headless Chromium window `width`×`height` px, or `None` (the test skips, naming why)
    /// when Chromium or chromedriver is not installed — see [`needs`].
    pub async fn start(test: &str, width: u32, height: u32) -> Option<Browser> {
        let driver = on_path("chromedriver");
        // Debian's /usr/bin/chromium is a wrapper script; the driver wants the binary.
        let chromium = [PathBuf::from("/usr/lib/chromium/chromium")]
            .into_iter()
            .find(|p| p.is_file())
            .or_else(|| on_path("chromium"));
        let here = driver.is_some() && chromium.is_some();
        if !needs(
            test,
            here,
            "Chromium and chromedriver are not installed; ./scripts/test.sh installs them \
             (Debian packages chromium, chromium-driver)",
        ) {
            return None;
        }
        let (driver, chromium) = (driver?, chromium?);
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let capabilities = serde_json::json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-extensions", "--hide-scrollbars",
                    format!("--window-size={width},{height}"),
                ]
            }
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let url = format!("http://127.0.0.1:{port}");
        let mut last = None;
        for _ in 0..100 {
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    return Some(Browser {
                        client,
                        driver: child,
                    });
                }
                Err(error) => last = Some(error),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not start a session: {last:?}");
    }

    /// End the browser session, then the driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
