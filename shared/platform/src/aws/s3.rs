use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use bytes::Bytes;

use crate::ports::{check_key, BlobStore, ByteReader, Result};
use crate::PlatformError;

pub struct S3BlobStore {
    client: Client,
    bucket: String,
}

impl S3BlobStore {
    /// `path_style` is for emulators; real S3 uses virtual-hosted style.
    pub fn new(config: &aws_config::SdkConfig, bucket: &str, path_style: bool) -> Self {
        let s3 = aws_sdk_s3::config::Builder::from(config).force_path_style(path_style).build();
        Self { client: Client::from_conf(s3), bucket: bucket.to_owned() }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

fn unavailable(e: impl std::fmt::Debug) -> PlatformError {
    PlatformError::Unavailable(format!("{e:?}"))
}

fn presigning(ttl: Duration) -> Result<PresigningConfig> {
    PresigningConfig::expires_in(ttl).map_err(|e| PlatformError::Invalid(e.to_string()))
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<()> {
        check_key(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        check_key(key)?;
        match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => Ok(Some(out.body.collect().await.map_err(unavailable)?.into_bytes())),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        check_key(key)?;
        self.client.delete_object().bucket(&self.bucket).key(key).send().await.map_err(unavailable)?;
        Ok(())
    }

    async fn size(&self, key: &str) -> Result<Option<u64>> {
        check_key(key)?;
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => Ok(out.content_length().and_then(|n| u64::try_from(n).ok())),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn open(&self, key: &str, offset: u64) -> Result<Option<ByteReader>> {
        check_key(key)?;
        let mut req = self.client.get_object().bucket(&self.bucket).key(key);
        if offset > 0 {
            req = req.range(format!("bytes={offset}-"));
        }
        match req.send().await {
            Ok(out) => Ok(Some(Box::pin(out.body.into_async_read()))),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            // A range starting at the end: nothing left to read.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 416) => {
                Ok(Some(Box::pin(tokio::io::empty())))
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn presign_put(&self, key: &str, ttl: Duration, content_type: &str) -> Result<String> {
        check_key(key)?;
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .presigned(presigning(ttl)?)
            .await
            .map_err(unavailable)?;
        Ok(req.uri().to_owned())
    }

    async fn presign_get(&self, key: &str, ttl: Duration) -> Result<String> {
        check_key(key)?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(presigning(ttl)?)
            .await
            .map_err(unavailable)?;
        Ok(req.uri().to_owned())
    }

    async fn upload_start(&self, key: &str, content_type: &str) -> Result<String> {
        check_key(key)?;
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(unavailable)?;
        out.upload_id().map(str::to_owned).ok_or_else(|| PlatformError::Unavailable("S3 gave no upload id".into()))
    }

    async fn upload_part(&self, key: &str, upload: &str, number: i32, body: Bytes) -> Result<String> {
        check_key(key)?;
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(unavailable)?;
        out.e_tag().map(str::to_owned).ok_or_else(|| PlatformError::Unavailable("S3 gave no ETag".into()))
    }

    async fn upload_complete(&self, key: &str, upload: &str, parts: &[(i32, String)]) -> Result<()> {
        use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
        check_key(key)?;
        let parts = parts.iter().map(|(n, e)| CompletedPart::builder().part_number(*n).e_tag(e).build()).collect();
        let done = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await;
        match done {
            Ok(_) => Ok(()),
            // The answer was lost or unreadable (a timeout after S3 completed it; an emulator's
            // answer the SDK cannot parse): the object at the key is what counts.
            Err(e) => match self.client.head_object().bucket(&self.bucket).key(key).send().await {
                Ok(_) => {
                    tracing::warn!(key, error = ?e, "completing the upload answered an error, but the object is there");
                    Ok(())
                }
                Err(_) => Err(unavailable(e)),
            },
        }
    }

    async fn upload_abort(&self, key: &str, upload: &str) -> Result<()> {
        check_key(key)?;
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
