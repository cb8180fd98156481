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
    /// group_updated / group_removed pushes.
    void onPush(const QJsonObject &push);

signals:
    void openChat(const QString &conversationId, const QString &peerUser, const QString &title);
    void groupsChanged();

private:
    void create();

    Session *session_;
    const FriendsPage *friends_;
    QListWidget *groups_;
    QLineEdit *name_;
    QListWidget *members_;
    QLabel *status_;
};
