//! `feige friends groups | group-set | suggest`: friend groups and friend suggestions.

use feige_client::Client;
use feige_tools::social::{self as out, Out};
use serde_json::json;

use super::user_id;
use crate::ContactsCmd;

/// Runs one of the commands on a resumed client; the lines to print.
pub(crate) async fn run(c: &Client, cmd: &ContactsCmd) -> anyhow::Result<Vec<Out>> {
    Ok(match cmd {
        ContactsCmd::Groups => {
            let mut outs = Vec::new();
            for g in c.friend_groups().await? {
                let name = if g.name.is_empty() {
                    "(default)".to_owned()
                } else {
                    g.name.clone()
                };
                outs.push(Out {
                    json: json!({
                        "type": "friend_group",
                        "name": g.name,
                        "users": g.friends.iter()
                            .filter_map(|f| f.user.as_ref().map(|u| u.user_id.to_string()))
                            .collect::<Vec<_>>(),
                    }),
                    text: format!("{name} ({})", g.friends.len()),
                });
                for f in &g.friends {
                    let mut o = out::friend(f);
                    o.text = format!("  {}", o.text);
                    outs.push(o);
                }
            }
            outs
        }
        ContactsCmd::GroupSet { who, group } => {
            let id = user_id(c, who).await?;
            vec![out::friend(&c.set_friend_group(id, group).await?)]
        }
        ContactsCmd::Suggest { limit } => c
            .friend_suggestions(limit.unwrap_or(0))
            .await?
            .iter()
            .map(|s| {
                let mut o = out::user(&s.user.clone().unwrap_or_default());
                o.json["type"] = "suggestion".into();
                o.json["mutual_friends"] = s.mutual_friends.into();
                o.json["mutual_groups"] = s.mutual_groups.into();
                o.text = format!(
                    "{} — {} mutual friends, {} mutual groups",
                    o.text, s.mutual_friends, s.mutual_groups
                );
                o
            })
            .collect(),
    })
}
