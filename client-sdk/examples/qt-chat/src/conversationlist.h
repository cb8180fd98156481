// ConversationList: the conversations, most recently active first, each with its last
// message, unread count and (1:1) the peer's presence. Filled by `conversations`, then kept
// current by message pushes, presence pushes and read positions.
#pragma once

#include <QHash>
#include <QJsonObject>
#include <QListWidget>

class Session;

class ConversationList : public QListWidget {
    Q_OBJECT
public:
    ConversationList(Session *session, QHash<QString, QString> *names, QWidget *parent = nullptr);

    void setSelf(const QString &userId) { self_ = userId; }
    /// The conversation shown in the chat view: it has nothing unread here, whatever a
    /// snapshot taken before its mark_read says.
    void setOpen(const QString &conversationId);
    /// (Re)loads the list from the server.
    void reload();
    /// A message push: updates its conversation (unread grows unless it is the open one).
    void onMessage(const QJsonObject &message);
    /// A friend's presence.
    void setPresence(const QString &userId, bool online);
    /// The unread count after a read position moved (here or on another device).
    void setUnread(const QString &conversationId, int unread);
    /// The title of a conversation ("" when not listed).
    QString title(const QString &conversationId) const;

signals:
    void openRequested(const QString &conversationId, const QString &peerUser, const QString &title);

private:
    struct Entry {
        QString peer; // the other user of a 1:1 conversation ("" for a group)
        QString title;
        QString last;
        int unread = 0;
    };
    QListWidgetItem *itemFor(const QString &conversationId) const;
    void render(QListWidgetItem *it);

    Session *session_;
    QHash<QString, QString> *names_;
    QString self_;
    QString open_;
    QHash<QString, Entry> entries_;   // by conversation id
    QHash<QString, bool> online_;     // by user id
    bool reloading_ = false;
};
