// FriendsPage: the friend list (with presence; double-click opens the chat), friend requests
// received (accept, reject) and sent, and a user search to send new ones.
#pragma once

#include <QHash>
#include <QJsonObject>
#include <QWidget>

class QLabel;
class QLineEdit;
class QListWidget;
class Session;

class FriendsPage : public QWidget {
    Q_OBJECT
public:
    FriendsPage(Session *session, QHash<QString, QString> *names, QWidget *parent = nullptr);

    /// Reloads friends and requests.
    void reload();
    /// Social pushes (friend_request, friend_added, presence, ...): refreshes what they touch.
    void onPush(const QJsonObject &push);
    /// The friends as last loaded: user id -> friend object.
    const QHash<QString, QJsonObject> &friends() const { return friends_; }

signals:
    void openChat(const QString &conversationId, const QString &peerUser, const QString &title);
    void presence(const QString &userId, bool online);
    void friendsChanged();

private:
    void loadFriends();
    void loadRequests();
    void search();
    void respond(bool accept);

    Session *session_;
    QHash<QString, QString> *names_;
    QLineEdit *query_;
    QListWidget *results_;
    QListWidget *incoming_;
    QListWidget *outgoing_;
    QListWidget *friendList_;
    QLabel *status_;
    QHash<QString, QJsonObject> friends_;
};
