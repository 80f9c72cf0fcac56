//! The DynamoDB emulator the tests run on keeps DynamoDB's transaction outcomes: moto, patched
//! by `scripts/moto_server.py` to back up only the items a transaction touches, must still
//! leave every touched item as it was when the transaction is cancelled, and apply all of it
//! when it is not. Driven through the real SDK, as the product's adapter drives it.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_string())
}

fn key(pk: &str, sk: &str) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

/// An item with a value and an entry in the first index (so index reads are checked too).
fn item(pk: &str, sk: &str, value: &str) -> Item {
    let mut item = key(pk, sk);
    item.insert("value".into(), s(value));
    item.insert("gsi1pk".into(), s("HARNESS"));
    item.insert("gsi1sk".into(), s(&format!("{pk}/{sk}")));
    item
}

async fn table() -> (Client, String) {
    let store = local_stack::dynamo::test_store().await;
    (store.client().clone(), store.table().to_string())
}

async fn get(client: &Client, table: &str, pk: &str, sk: &str) -> Option<Item> {
    client.get_item().table_name(table).set_key(Some(key(pk, sk))).consistent_read(true).send().await.unwrap().item
}

async fn put(client: &Client, table: &str, value: Item) {
    client.put_item().table_name(table).set_item(Some(value)).send().await.unwrap();
}

/// Every item of the table, in key order, and what the first index holds.
async fn everything(client: &Client, table: &str) -> (Vec<Item>, Vec<String>) {
    let mut items = client.scan().table_name(table).send().await.unwrap().items.unwrap_or_default();
    items.sort_by_key(|i| format!("{:?}{:?}", i["pk"], i["sk"]));
    let indexed = client
        .query()
        .table_name(table)
        .index_name("gsi1")
        .key_condition_expression("gsi1pk = :h")
        .expression_attribute_values(":h", s("HARNESS"))
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default()
        .iter()
        .map(|i| i["gsi1sk"].as_s().unwrap().clone())
        .collect();
    (items, indexed)
}

fn put_new(table: &str, pk: &str, value: &str) -> TransactWriteItem {
    TransactWriteItem::builder()
        .put(
            Put::builder()
                .table_name(table)
                .set_item(Some(item(pk, "A", value)))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .unwrap(),
        )
        .build()
}

fn update(table: &str, pk: &str, value: &str) -> TransactWriteItem {
    TransactWriteItem::builder()
        .update(
            Update::builder()
                .table_name(table)
                .set_key(Some(key(pk, "A")))
                .update_expression("SET #v = :v, gsi1pk = :h, gsi1sk = :s")
                .expression_attribute_names("#v", "value")
                .expression_attribute_values(":v", s(value))
                .expression_attribute_values(":h", s("HARNESS"))
                .expression_attribute_values(":s", s(&format!("{pk}/A")))
                .build()
                .unwrap(),
        )
        .build()
}

fn delete(table: &str, pk: &str) -> TransactWriteItem {
    TransactWriteItem::builder()
        .delete(Delete::builder().table_name(table).set_key(Some(key(pk, "A"))).build().unwrap())
        .build()
}

/// A new item put, an item updated, an item created by an update, an item deleted.
fn a_put_two_updates_and_a_delete(table: &str) -> Vec<TransactWriteItem> {
    vec![
        put_new(table, "created", "new"),
        update(table, "updated", "after"),
        update(table, "upserted", "new"),
        delete(table, "deleted"),
    ]
}

/// The reasons' codes of a cancelled transaction ("None" for the items that passed).
fn cancellation_codes(error: aws_sdk_dynamodb::error::SdkError<TransactWriteItemsError>) -> Vec<String> {
    match error.into_service_error() {
        TransactWriteItemsError::TransactionCanceledException(cancelled) => {
            cancelled.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None").to_string()).collect()
        }
        other => panic!("expected a cancelled transaction, got {other:?}"),
    }
}

async fn seeded() -> (Client, String) {
    let (client, table) = table().await;
    for (pk, value) in [("updated", "before"), ("deleted", "kept"), ("taken", "first")] {
        put(&client, &table, item(pk, "A", value)).await;
    }
    // A neighbour in the deleted item's partition: a rollback must not disturb it.
    put(&client, &table, item("deleted", "B", "neighbour")).await;
    (client, table)
}

#[tokio::test]
async fn a_transaction_cancelled_by_its_last_condition_leaves_every_item_as_it_was() {
    let (client, table) = seeded().await;
    let before = everything(&client, &table).await;
    let error = client
        .transact_write_items()
        .set_transact_items(Some(a_put_two_updates_and_a_delete(&table)))
        .transact_items(put_new(&table, "taken", "second"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(cancellation_codes(error), ["None", "None", "None", "None", "ConditionalCheckFailed"]);
    assert_eq!(everything(&client, &table).await, before, "a cancelled transaction changes nothing");
    assert!(get(&client, &table, "created", "A").await.is_none(), "the put's new item is gone");
    assert!(get(&client, &table, "upserted", "A").await.is_none(), "the update's new item is gone");
    assert_eq!(get(&client, &table, "updated", "A").await.unwrap()["value"], s("before"));
    assert_eq!(get(&client, &table, "deleted", "A").await.unwrap()["value"], s("kept"));
    assert_eq!(get(&client, &table, "taken", "A").await.unwrap()["value"], s("first"));
}

#[tokio::test]
async fn a_transaction_whose_conditions_hold_applies_all_of_it() {
    let (client, table) = seeded().await;
    client
        .transact_write_items()
        .set_transact_items(Some(a_put_two_updates_and_a_delete(&table)))
        .send()
        .await
        .unwrap();
    assert_eq!(get(&client, &table, "created", "A").await.unwrap()["value"], s("new"));
    assert_eq!(get(&client, &table, "updated", "A").await.unwrap()["value"], s("after"));
    assert_eq!(get(&client, &table, "upserted", "A").await.unwrap()["value"], s("new"));
    assert!(get(&client, &table, "deleted", "A").await.is_none());
    assert_eq!(get(&client, &table, "deleted", "B").await.unwrap()["value"], s("neighbour"));
    let (_, indexed) = everything(&client, &table).await;
    assert_eq!(indexed, ["created/A", "deleted/B", "taken/A", "updated/A", "upserted/A"]);
}

#[tokio::test]
async fn a_transaction_touching_one_item_twice_is_refused_whole() {
    let (client, table) = seeded().await;
    let before = everything(&client, &table).await;
    let error = client
        .transact_write_items()
        .transact_items(put_new(&table, "created", "new"))
        .transact_items(update(&table, "updated", "after"))
        .transact_items(delete(&table, "updated"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("ValidationException"), "{error:?}");
    assert_eq!(everything(&client, &table).await, before, "a refused transaction changes nothing");
}

#[tokio::test]
async fn a_cancelled_transaction_leaves_no_trace_for_the_next_one() {
    let (client, table) = seeded().await;
    // Cancelled by its first item: the later ones are still checked (every reason is given).
    let error = client
        .transact_write_items()
        .transact_items(put_new(&table, "taken", "second"))
        .transact_items(put_new(&table, "created", "new"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(cancellation_codes(error), ["ConditionalCheckFailed", "None"]);
    // The item the cancelled transaction would have created can be created now, once.
    client.transact_write_items().transact_items(put_new(&table, "created", "new")).send().await.unwrap();
    let again = client.transact_write_items().transact_items(put_new(&table, "created", "again")).send().await;
    assert_eq!(cancellation_codes(again.unwrap_err()), ["ConditionalCheckFailed"]);
    assert_eq!(get(&client, &table, "created", "A").await.unwrap()["value"], s("new"));
}
