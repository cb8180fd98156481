// GroupsPage: the user's groups (double-click opens the group chat), creating a group with
// chosen friends, and leaving one.
#pragma once

#include <QHash>
#include <QJsonObject>
#include <QWidget>

class FriendsPage;
class QLabel;
class QLineEdit;
class QListWidget;
class Session;

class GroupsPage : public QWidget {
    Q_OBJECT
public:
    GroupsPage(Session *session, const FriendsPage *friends, QWidget *parent = nullptr);

    void reload();
    /// Friends changed: the member picker shows the current ones.
    void refreshFriends();
    /// Creates group `name` with these friends (user ids), then opens its chat.
    void createGroup(const QString &name, const QStringList &memberIds);
    /// group_updated / group_removed pushes.
    void onPush(const QJsonObject &push);

signals:
    void openChat(const QString &conversationId, const QString &peerUser, const QString &title);
    void groupsChanged();
    /// createGroup() succeeded (after openChat), or failed.
    void created(const QString &conversationId);
    void createFailed(const QString &error);

private:
    void create();

    Session *session_;
    const FriendsPage *friends_;
    QListWidget *groups_;
    QLineEdit *name_;
    QListWidget *members_;
    QLabel *status_;
};
