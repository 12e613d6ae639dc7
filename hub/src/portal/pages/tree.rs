//! The tree of nodes, problems first: offline nodes, quarantined rows,
//! overdue resources.

use super::*;

/// The tree, problems first (a connection of its own to `hub.db`: counting
/// the vaults' rows must not hold the sessions' connection).
fn tree(p: &Portal) -> Result<Vec<crate::nodes::NodeStatus>, String> {
    let paths = HubPaths::new(&p.dir);
    let store = Store::open(&paths).map_err(|e| e.to_string())?;
    let mut list = crate::nodes::list(&store, Some(&p.shared.vaults), now()).map_err(|e| e.to_string())?;
    // problems first: not connected, then rows quarantined, then the rest, each by node
    let fine = |n: &crate::nodes::NodeStatus| (n.state == "connected", n.quality.iter().all(|q| q.quarantined == 0));
    list.sort_by(|a, b| (fine(a), &a.row.node).cmp(&(fine(b), &b.row.node)));
    Ok(list)
}

/// `GET /tree`.
pub async fn tree_page(State(p): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    blocking(p, headers, |p, v| {
        if let Some(r) = need_staff(&v) {
            return r;
        }
        let l = v.lang;
        let list = match tree(p) {
            Ok(x) => x,
            Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &v, &e),
        };
        let overdue: Vec<(NodeId, String)> = p
            .shared
            .catalog
            .lock()
            .ok()
            .and_then(|c| c.list(&crate::catalog::Filter { overdue: true, ..Default::default() }, now()).ok())
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.entry.provider, e.entry.name))
            .collect();
        let quarantines = list.iter().flat_map(|n| &n.quality).filter(|q| q.quarantined > 0).count();
        let problems = list.iter().filter(|n| n.state != "connected").count() + overdue.len() + quarantines;
        let mut body = if problems == 0 {
            notice(
                "ok",
                l.t(
                    "所有节点在线，所有资源按更新周期更新。",
                    "Every node is connected and every resource is up to date.",
                ),
            )
        } else {
            notice(
                "error",
                &format!(
                    "{problems} {}",
                    l.t(
                        "个问题（离线节点、超期未更新的资源）排在最前。",
                        "problems (offline nodes, overdue resources) are listed first."
                    )
                ),
            )
        };
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|n| {
                let res: Vec<String> = n
                    .resources
                    .iter()
                    .map(|r| {
                        format!(
                            "{} · {} {} · #{} · {}",
                            esc(&r.resource),
                            r.rows,
                            l.t("行", "rows"),
                            r.last_seq,
                            time(Some(r.updated_at))
                        )
                    })
                    .collect();
                let quarantined: Vec<String> = n
                    .quality
                    .iter()
                    .filter(|q| q.quarantined > 0)
                    .map(|q| {
                        let first = q.samples.first().map(|(p, r)| format!("{p}: {r}")).unwrap_or_default();
                        format!(
                            "<span class=\"badge bad\">{} {} {}</span> {} <span class=\"muted\">{}</span>",
                            esc(&q.resource),
                            q.quarantined,
                            l.t("行被隔离", "rows quarantined"),
                            time(Some(q.at)),
                            esc(&first)
                        )
                    })
                    .collect();
                let late: Vec<String> = overdue
                    .iter()
                    .filter(|(prov, _)| prov.to_string() == n.row.node)
                    .map(|(_, name)| format!("{} {}", badge("overdue", l), esc(name)))
                    .collect();
                vec![
                    esc(&n.row.node),
                    esc(&n.row.role),
                    format!("{} {}", esc(&n.row.division), esc(&n.row.division_name)),
                    esc(n.via.as_deref().unwrap_or("–")),
                    badge(&n.state, l),
                    n.backlog.map(|b| b.to_string()).unwrap_or_else(|| "–".into()),
                    date(n.row.cert_not_after),
                    time(n.row.last_seen),
                    [res, quarantined, late].concat().join("<br>"),
                ]
            })
            .collect();
        let head = [
            l.t("节点", "Node"),
            l.t("角色", "Role"),
            l.t("行政区划", "Division"),
            l.t("经由", "Via"),
            l.t("状态", "State"),
            l.t("积压", "Backlog"),
            l.t("证书到期", "Certificate expires"),
            l.t("最近连接", "Last seen"),
            l.t("资源（行数 · 最近变更集 · 时间）", "Resources (rows · last changeset · time)"),
        ];
        body.push_str(&table(
            &head,
            &rows,
            l.t(
                "还没有节点注册。用 gdx-hub token 为部门生成注册令牌。",
                "No node has enrolled yet. Make a token with `gdx-hub token`.",
            ),
        ));
        page_response(StatusCode::OK, &v, "tree", l.t("节点与连接", "Nodes and connections"), &body)
    })
    .await
}

/// `GET /api/v1/tree`.
pub async fn tree_json(State(p): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    staff_json(p, headers, "the tree", |p| {
        tree(p).map(|list| serde_json::json!({ "count": list.len(), "nodes": list }))
    })
    .await
}
