#include "conversationlist.h"

#include "session.h"
#include "util.h"

#include "feige.h"

#include <QJsonArray>

namespace {
constexpr int kConversationId = 0x0100 + 10;
}

ConversationList::ConversationList(Session *session, QHash<QString, QString> *names, QWidget *parent)
    : QListWidget(parent), session_(session), names_(names) {
    connect(this, &QListWidget::itemActivated, this, [this](QListWidgetItem *it) {
        const QString id = it->data(kConversationId).toString();
        const Entry &e = entries_[id];
        emit openRequested(id, e.peer, e.title);
    });
    connect(this, &QListWidget::itemClicked, this, &QListWidget::itemActivated);
}

void ConversationList::setOpen(const QString &id) {
    open_ = id;
    setUnread(id, 0);
}

void ConversationList::reload() {
    if (reloading_)
        return;
    reloading_ = true;
    session_->call("conversations", {}, [this](int status, const QJsonObject &json) {
        reloading_ = false;
        if (status != FEIGE_OK)
            return;
        clear();
        entries_.clear();
        for (const QJsonValue &v : json.value("conversations").toArray()) {
            const QJsonObject c = v.toObject();
            const QString id = c.value("conversation_id").toString();
            Entry e;
            if (c.value("group").isObject()) {
                e.title = tr("%1 (group)").arg(c.value("group").toObject().value("name").toString());
            } else {
                const QJsonObject peer = c.value("peer").toObject();
                e.peer = peer.value("user_id").toString();
                const QString remark = c.value("remark").toString();
                e.title = remark.isEmpty() ? util::userName(peer) : remark;
                names_->insert(e.peer, util::userName(peer));
            }
            if (c.value("last_message").isObject())
                e.last = util::messageSummary(c.value("last_message").toObject());
            e.unread = id == open_ ? 0 : c.value("unread").toInt();
            entries_.insert(id, e);
            auto *it = new QListWidgetItem;
            it->setData(kConversationId, id);
            addItem(it);
            render(it);
        }
    });
}

QListWidgetItem *ConversationList::itemFor(const QString &id) const {
    for (int row = 0; row < count(); ++row)
        if (item(row)->data(kConversationId).toString() == id)
            return item(row);
    return nullptr;
}

void ConversationList::render(QListWidgetItem *it) {
    const Entry &e = entries_[it->data(kConversationId).toString()];
    QString head = e.title;
    if (!e.peer.isEmpty())
        head = (online_.value(e.peer) ? QStringLiteral("● ") : QStringLiteral("○ ")) + head;
    if (e.unread > 0)
        head += QStringLiteral("  (%1)").arg(e.unread);
    it->setText(head + QStringLiteral("\n   ") + e.last.left(60));
    QFont f = it->font();
    f.setBold(e.unread > 0);
    it->setFont(f);
}

void ConversationList::onMessage(const QJsonObject &m) {
    const QString id = m.value("conversation_id").toString();
    QListWidgetItem *it = itemFor(id);
    if (!it) {
        reload(); // a conversation new to this list: the server has its title
        return;
    }
    Entry &e = entries_[id];
    e.last = util::messageSummary(m);
    if (id != open_ && m.value("from_user").toString() != self_)
        ++e.unread;
    takeItem(row(it));
    insertItem(0, it);
    render(it);
}

void ConversationList::setPresence(const QString &userId, bool online) {
    online_.insert(userId, online);
    for (int row = 0; row < count(); ++row)
        if (entries_[item(row)->data(kConversationId).toString()].peer == userId)
            render(item(row));
}

void ConversationList::setUnread(const QString &id, int unread) {
    if (QListWidgetItem *it = itemFor(id)) {
        entries_[id].unread = unread;
        render(it);
    }
}

QString ConversationList::title(const QString &id) const {
    return entries_.value(id).title;
}
