//! The table definition, from `keys.rs`: created by the local stack and the tests, and
//! compared with the SAM template's table by a test so the two never drift.

use super::keys::{INDEXES, PK, SK, TTL};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};

/// The table's shape in plain terms (for comparison with the template).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableShape {
    /// The partition key attribute.
    pub hash_key: String,
    /// The sort key attribute.
    pub range_key: String,
    /// `(index name, hash key, range key)`, all string attributes, projection ALL.
    pub indexes: Vec<(String, String, String)>,
    /// The attribute DynamoDB's TTL reads.
    pub ttl_attribute: String,
}

/// What the code expects of the table.
pub fn expected_shape() -> TableShape {
    TableShape {
        hash_key: PK.into(),
        range_key: SK.into(),
        indexes: INDEXES.iter().map(|i| (i.name.to_string(), i.pk.to_string(), i.sk.to_string())).collect(),
        ttl_attribute: TTL.into(),
    }
}

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder().attribute_name(name).key_type(kind).build().expect("name and type are set")
}

fn string_attribute(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .expect("name and type are set")
}

/// Creates the table (on-demand) with its indexes and TTL, unless it exists.
pub async fn create_table_if_missing(client: &Client, table: &str) -> Result<(), String> {
    if client.describe_table().table_name(table).send().await.is_ok() {
        return Ok(());
    }
    let mut attributes = vec![string_attribute(PK), string_attribute(SK)];
    let mut indexes = Vec::new();
    for index in INDEXES {
        attributes.push(string_attribute(index.pk));
        attributes.push(string_attribute(index.sk));
        indexes.push(
            GlobalSecondaryIndex::builder()
                .index_name(index.name)
                .key_schema(key(index.pk, KeyType::Hash))
                .key_schema(key(index.sk, KeyType::Range))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .map_err(|e| e.to_string())?,
        );
    }
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(PK, KeyType::Hash))
        .key_schema(key(SK, KeyType::Range))
        .set_attribute_definitions(Some(attributes))
        .set_global_secondary_indexes(Some(indexes))
        .send()
        .await
        .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder().attribute_name(TTL).enabled(true).build().map_err(|e| e.to_string())?,
        )
        .send()
        .await
        .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())?;
    Ok(())
}
