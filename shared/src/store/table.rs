//! The table itself: created (with the job list index and TTL) for local runs and tests; a
//! deployed stack gets it from the template.

use super::*;
use crate::error::{Error, Result};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
};
use std::time::Duration;
use tracing::debug;

impl Store {
    /// Creates the table (on-demand billing, keys `pk`/`sk`, the job list index) when missing,
    /// and adds the index to a table made without it; for `batchops local up` and tests.
    pub async fn create_table_if_missing(&self) -> Result<()> {
        if self.table_status().await?.is_none() {
            let created = self
                .client
                .create_table()
                .table_name(&self.table)
                .billing_mode(BillingMode::PayPerRequest)
                .attribute_definitions(string_attribute(PK)?)
                .attribute_definitions(string_attribute(SK)?)
                .attribute_definitions(string_attribute(A_LIST_PK)?)
                .attribute_definitions(string_attribute(A_LIST_SK)?)
                .key_schema(key_element(PK, KeyType::Hash)?)
                .key_schema(key_element(SK, KeyType::Range)?)
                .global_secondary_indexes(jobs_index()?)
                .send()
                .await;
            match created {
                Ok(_) => debug!(table = %self.table, "created table"),
                // Somebody else created it meanwhile: fine, wait for it like for our own.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_resource_in_use_exception()) => {}
                Err(e) => return Err(Error::aws("DynamoDB", "CreateTable", e)),
            }
        }
        self.wait_until_active().await?;
        if !self.has_jobs_index().await? {
            self.client
                .update_table()
                .table_name(&self.table)
                .attribute_definitions(string_attribute(A_LIST_PK)?)
                .attribute_definitions(string_attribute(A_LIST_SK)?)
                .global_secondary_index_updates(
                    aws_sdk_dynamodb::types::GlobalSecondaryIndexUpdate::builder()
                        .create(
                            aws_sdk_dynamodb::types::CreateGlobalSecondaryIndexAction::builder()
                                .index_name(JOBS_INDEX)
                                .key_schema(key_element(A_LIST_PK, KeyType::Hash)?)
                                .key_schema(key_element(A_LIST_SK, KeyType::Range)?)
                                .projection(jobs_index_projection())
                                .build()
                                .map_err(|e| Error::encode("the index", e))?,
                        )
                        .build(),
                )
                .send()
                .await
                .map_err(|e| Error::aws("DynamoDB", "UpdateTable", e))?;
            self.wait_until_active().await?;
        }
        Ok(())
    }
    pub(super) async fn has_jobs_index(&self) -> Result<bool> {
        let out = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| Error::aws("DynamoDB", "DescribeTable", e))?;
        Ok(out
            .table()
            .map(|t| t.global_secondary_indexes())
            .unwrap_or_default()
            .iter()
            .any(|i| i.index_name() == Some(JOBS_INDEX)))
    }
    pub(super) async fn table_status(&self) -> Result<Option<TableStatus>> {
        match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(out) => Ok(Some(
                out.table()
                    .and_then(|t| t.table_status())
                    .cloned()
                    .unwrap_or(TableStatus::Active),
            )),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(Error::aws("DynamoDB", "DescribeTable", e)),
        }
    }
    pub(super) async fn wait_until_active(&self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + TABLE_ACTIVE_TIMEOUT;
        loop {
            if self.table_status().await? == Some(TableStatus::Active) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::NotReady(format!(
                    "DynamoDB table {} did not become ACTIVE within {}s",
                    self.table,
                    TABLE_ACTIVE_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// How long `create_table_if_missing` waits for a new table to become active.
pub(super) const TABLE_ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);

pub(super) fn string_attribute(name: &str) -> Result<AttributeDefinition> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| Error::encode("an attribute definition", e))
}

pub(super) fn key_element(name: &str, key_type: KeyType) -> Result<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(|e| Error::encode("the key schema", e))
}

pub(super) fn jobs_index_projection() -> aws_sdk_dynamodb::types::Projection {
    aws_sdk_dynamodb::types::Projection::builder()
        .projection_type(aws_sdk_dynamodb::types::ProjectionType::Include)
        .non_key_attributes(A_STATUS)
        .non_key_attributes(A_TTL)
        .build()
}

pub(super) fn jobs_index() -> Result<aws_sdk_dynamodb::types::GlobalSecondaryIndex> {
    aws_sdk_dynamodb::types::GlobalSecondaryIndex::builder()
        .index_name(JOBS_INDEX)
        .key_schema(key_element(A_LIST_PK, KeyType::Hash)?)
        .key_schema(key_element(A_LIST_SK, KeyType::Range)?)
        .projection(jobs_index_projection())
        .build()
        .map_err(|e| Error::encode("the job list index", e))
}
