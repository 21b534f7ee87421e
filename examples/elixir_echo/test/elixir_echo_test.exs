defmodule ElixirEchoTest do
  use ExUnit.Case, async: true

  alias ElixirEcho.{Client, Server}

  # Waits for events up to this long; each normally takes milliseconds.
  @deadline 10_000

  # A server certificate for "localhost" under a test CA, and a CA from a
  # second, unrelated set: the one not named like the server's issuer (each
  # set names its roots alike).
  setup_all do
    %{server_config: server, client_config: client} = pki()
    %{client_config: stranger} = pki()
    other_ca = Enum.reject(stranger[:cacerts], &:public_key.pkix_is_issuer(server[:cert], &1))

    %{
      server_tls: Keyword.take(server, [:cert, :key]),
      trusting: [verify: :verify_peer, cacerts: client[:cacerts]],
      other_ca: [verify: :verify_peer, cacerts: other_ca]
    }
  end

  defp pki do
    san = {:Extension, {2, 5, 29, 17}, false, [dNSName: ~c"localhost"]}
    # P-256 keys and SHA-256: the defaults are below OpenSSL's security level.
    key = [key: {:namedCurve, :secp256r1}, digest: :sha256]

    :public_key.pkix_test_data(%{
      server_chain: %{root: key, intermediates: [], peer: [extensions: [san]] ++ key},
      client_chain: %{root: key, intermediates: [], peer: key}
    })
  end

  setup %{server_tls: tls} do
    {:ok, server} = Server.start_link(tls: tls, notify: self())
    %{server: server, port: Server.port(server)}
  end

  test "echoes what a client sends, over TLS 1.3", %{port: port, trusting: tls} do
    {:ok, socket} = Client.connect("localhost", port, tls)
    assert Client.protocol(socket) == :"tlsv1.3"

    for data <- ["hello", :crypto.strong_rand_bytes(200_000), "bye"] do
      assert Client.echo(socket, data) == {:ok, data}
    end

    :ok = Client.close(socket)
    assert_receive {:echo_closed, _conn, 200_008}, @deadline
  end

  test "serves many clients at once", %{port: port, trusting: tls} do
    clients =
      for i <- 1..20 do
        Task.async(fn ->
          {:ok, socket} = Client.connect("localhost", port, tls)
          data = :binary.copy(<<i>>, 1_000 * i)
          result = Client.echo(socket, data)
          :ok = Client.close(socket)
          {result, data}
        end)
      end

    for {result, data} <- Task.await_many(clients, @deadline) do
      assert result == {:ok, data}
    end

    for _ <- 1..20, do: assert_receive({:echo_closed, _conn, _bytes}, @deadline)
  end

  test "the server's connection ends when the client closes", %{port: port, trusting: tls} do
    {:ok, socket} = Client.connect("localhost", port, tls)
    assert Client.echo(socket, "ping") == {:ok, "ping"}
    :ok = Client.close(socket)
    assert_receive {:echo_closed, conn, 4}, @deadline
    ref = Process.monitor(conn)
    assert_receive {:DOWN, ^ref, :process, ^conn, _}, @deadline
    assert Client.echo(socket, "late") == {:error, :closed}
  end

  test "a client that does not trust the server's CA gets no connection",
       %{port: port, other_ca: tls} do
    assert {:error, {:tls_alert, {:unknown_ca, _}}} = Client.connect("localhost", port, tls)
    assert_receive {:echo_handshake_failed, _conn, _reason}, @deadline
  end

  test "a client checks the host name", %{port: port, trusting: tls} do
    assert {:error, {:tls_alert, {:handshake_failure, _}}} =
             Client.connect("localhost", port, [server_name_indication: ~c"example.org"] ++ tls)
  end

  test "after stop, the port takes no connections",
       %{server: server, port: port, trusting: tls} do
    :ok = Server.stop(server)
    assert Client.connect("localhost", port, tls) == {:error, :econnrefused}
  end
end
