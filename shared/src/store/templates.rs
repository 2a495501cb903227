//! Job templates: a CreateJob request without a manifest, started for each inventory delivered
//! under its prefix.

use super::*;
use crate::error::{Error, Result};

impl Store {
    /// Stores a job template, replacing any of the same name.
    pub async fn put_template(&self, template: &JobTemplate) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(template_to_item(template)?))
            .send()
            .await
            .map_err(|e| Error::aws("DynamoDB", "PutItem", e))?;
        Ok(())
    }
    /// Every stored job template, in the table's order (by name).
    pub async fn list_templates(&self) -> Result<Vec<JobTemplate>> {
        let items = self.query_all(TEMPLATE_PK, None).await?;
        items.iter().map(template_from_item).collect()
    }
    /// Returns false when there was no template of that name.
    pub async fn delete_template(&self, name: &str) -> Result<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(TEMPLATE_PK))
            .key(SK, s(name))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| Error::aws("DynamoDB", "DeleteItem", e))?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }
}

/// A job template as a DynamoDB item.
pub fn template_to_item(template: &JobTemplate) -> Result<Item> {
    let request = serde_json::to_string(&template.request)
        .map_err(|e| Error::encode(format!("job template {}", template.name), e))?;
    Ok(Item::from([
        (PK.to_string(), s(TEMPLATE_PK)),
        (SK.to_string(), s(&template.name)),
        (A_NAME.to_string(), s(&template.name)),
        (A_MANIFEST_BUCKET.to_string(), s(&template.manifest_bucket)),
        (A_MANIFEST_PREFIX.to_string(), s(&template.manifest_prefix)),
        (A_REQUEST.to_string(), s(&request)),
    ]))
}

/// A job template from its DynamoDB item (the inverse of [`template_to_item`]); fails with
/// `Malformed` when an attribute is missing or the request is not valid JSON.
pub fn template_from_item(item: &Item) -> Result<JobTemplate> {
    Ok(JobTemplate {
        name: get_s(item, SK)?.to_string(),
        manifest_bucket: get_s(item, A_MANIFEST_BUCKET)?.to_string(),
        manifest_prefix: get_opt_s(item, A_MANIFEST_PREFIX)?
            .unwrap_or_default()
            .to_string(),
        request: serde_json::from_str(get_s(item, A_REQUEST)?)
            .map_err(|e| malformed(A_REQUEST, e))?,
    })
}
